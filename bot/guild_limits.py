"""A server's own member limits and lanes (/settings server), kept in its guild settings in
PostgreSQL so every bot process admits by them.

A server may only tighten the operator's limits (DREAMLOOP_MAX_QUEUED and the rest): the
GPUs are shared by every server the bot is in, so no one server may take more of them than
the operator allows a member anywhere. Counts are of the member's jobs everywhere: a member
has one load on the shared GPUs, whichever server they ask from.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bot/limits.py imports this module
    from bot.limits import Limits

LIMIT_KEYS = ("max_running", "max_queued", "per_minute", "fast_gpu_seconds")
LOWEST = {"max_running": 1, "max_queued": 1, "per_minute": 1, "fast_gpu_seconds": 0}
# /settings server lanes: which lanes members may use here.
LANE_SETS = {"all": ("turbo", "fast", "relax"), "fast_relax": ("fast", "relax"),
             "relax": ("relax",)}
LANE_SET_NAMES = {"all": "all lanes", "fast_relax": "fast and relax (no turbo)",
                  "relax": "relax only"}


class GuildLimitError(ValueError):
    """A server limit out of its range; the message names the option and the range."""


def check_limit(key: str, value: int, limits: Limits) -> int:
    """value, when it is within LOWEST and the operator's own limit."""
    highest = int(getattr(limits, key))
    if not LOWEST[key] <= value <= highest:
        raise GuildLimitError(f"Not saved: {key} must be from {LOWEST[key]} to {highest} "
                              f"(the bot's operator allows at most {highest}); it was {value}.")
    return value


def limits_for(limits: Limits, guild: dict) -> Limits:
    """The operator's limits with the server's own in place of those it set."""
    return dataclasses.replace(limits, **{key: guild[key] for key in LIMIT_KEYS
                                          if guild.get(key) is not None})


def allowed_lane(lane: str, guild: dict) -> str:
    """lane, or the nearest one the server lets members use (turbo → fast → relax)."""
    allowed = LANE_SETS[guild.get("lanes") or "all"]
    if lane in allowed:
        return lane
    order = ("turbo", "fast", "relax")
    return next((other for other in order[order.index(lane):] if other in allowed), "relax")


def lane_note(asked: str, lane: str, guild: dict) -> str | None:
    """The sentence telling a member their lane is not the one asked, or None."""
    if asked == lane:
        return None
    return (f"This server lets members use {LANE_SET_NAMES[guild.get('lanes') or 'all']}, so "
            f"this job runs in the {lane} lane, not {asked}.")
