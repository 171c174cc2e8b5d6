"""Which two images /rate shows a member next (pure functions over candidate rows).

- A real pair is two images made for the same prompt: from two model versions where
  possible (that is what the leaderboard rates), otherwise two seeds of one version.
- About one pair in ten is a control: an image made for the prompt shown, against a decoy
  made for an unrelated prompt. A careful member never prefers the decoy; their control
  accuracy is their reliability (db/migrations/0004_rate.sql). Neither image of a control
  is the member's own: they would know which prompt it was made for without looking.
- A member never rates the same pair twice, whichever side each image was on.
- The two images go left (A) and right (B) in random order, so a preference for one side
  cannot favour one version (the leaderboard reports what remains as position bias).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

CONTROL_SHARE = 0.1  # Pick-a-Pic's web app showed an unrelated image 10% of the time


@dataclass(frozen=True)
class Candidate:
    """A finished image of a text-to-image job, as /rate may show it."""

    image_id: int
    prompt: str
    version_id: int
    member_id: int | None  # who made it (None: the CLI)


@dataclass(frozen=True)
class PairToShow:
    left: Candidate
    right: Candidate
    prompt: str  # the prompt shown with the pair
    decoy: Candidate | None = None  # set for a control pair: the image of another prompt


def pair_key(first: int, second: int) -> tuple[int, int]:
    """A pair's identity, whichever side each image was on."""
    return min(first, second), max(first, second)


def choose_pair(same_prompt: Sequence[Candidate], others: Sequence[Candidate],
                member_id: int, voted: Collection[tuple[int, int]],
                rng: random.Random) -> PairToShow | None:
    """A control from `others` (any images) about CONTROL_SHARE of the time when one can be
    made, else a real pair from `same_prompt` (images of prompts with two or more); None
    when the member has rated every pair these make."""
    if rng.random() < CONTROL_SHARE:
        control = choose_control(others, member_id, voted, rng)
        if control is not None:
            return control
    return choose_real_pair(same_prompt, voted, rng)


def choose_real_pair(candidates: Sequence[Candidate], voted: Collection[tuple[int, int]],
                     rng: random.Random) -> PairToShow | None:
    """Two images of one prompt not yet rated by the member, from two versions if any such
    pair is left, in random positions."""
    by_prompt: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_prompt.setdefault(candidate.prompt, []).append(candidate)
    pairs = [(a, b) for group in by_prompt.values() for a, b in itertools.combinations(group, 2)
             if pair_key(a.image_id, b.image_id) not in voted]
    across = [(a, b) for a, b in pairs if a.version_id != b.version_id]
    chosen = list(rng.choice(across or pairs)) if pairs else None
    if chosen is None:
        return None
    rng.shuffle(chosen)
    return PairToShow(chosen[0], chosen[1], chosen[0].prompt)


def choose_control(candidates: Sequence[Candidate], member_id: int,
                   voted: Collection[tuple[int, int]], rng: random.Random) -> PairToShow | None:
    """An image of one prompt against a decoy of another, neither the member's own, not a
    pair they have answered; the prompt shown is the first image's."""
    others = [c for c in candidates if c.member_id != member_id]
    pairs = [(shown, decoy) for shown, decoy in itertools.permutations(others, 2)
             if shown.prompt != decoy.prompt
             and pair_key(shown.image_id, decoy.image_id) not in voted]
    if not pairs:
        return None
    shown, decoy = rng.choice(pairs)
    left, right = (shown, decoy) if rng.random() < 0.5 else (decoy, shown)
    return PairToShow(left, right, shown.prompt, decoy)
