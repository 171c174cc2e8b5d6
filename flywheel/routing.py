"""A/B routing: which model version draws a job nobody chose a model for.

Each version has a traffic weight (set by `dreamloop models weight` or /models); a job goes to
version v with probability weight(v) / sum of the weights of the versions that can be served
now. A member's explicit choice (--model, the model option, their /settings default) always
wins and never reaches this.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol


class Weighted(Protocol):
    name: str
    traffic_weight: float


def choose_version(versions: Sequence[Weighted], rng: random.Random) -> Weighted | None:
    """One version, drawn in proportion to its weight; None when no version has any."""
    candidates = [v for v in versions if v.traffic_weight > 0]
    if not candidates:
        return None
    return rng.choices(candidates, weights=[v.traffic_weight for v in candidates])[0]


def traffic_shares(rows: Sequence[tuple[Weighted, bool]]) -> list[float]:
    """Each version's share of routed jobs now, given whether a worker serves it: its weight
    over the weights of the served versions (what route draws from); 0 when unserved."""
    total = sum(v.traffic_weight for v, served in rows if served)
    return [v.traffic_weight / total if served and total else 0.0 for v, served in rows]
