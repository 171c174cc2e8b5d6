"""Posting through Discord's bad moments: a 5xx or a run of 429s is waited out, not taken
as the end of a result.

discord.py already retries some of these itself: a 429 carrying Discord's JSON body and a
`Via` header up to 5 times, sleeping its `retry_after` each time, and 500, 502, 504 and 524
up to 5 times (1, 3, 5, 7, 9 s apart); a 503 or a longer run is raised to us. Here each
post is tried ATTEMPTS times more, the waits doubling from FIRST_WAIT_S and never shorter
than the Retry-After Discord asked for. Other refusals (400, 403, 404, 413) are final:
sending the same request again cannot help, and Discord counts repeated 4xx against a
bot (10,000 in 10 minutes: a temporary ban).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

log = logging.getLogger(__name__)
ATTEMPTS = 5
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0
T = TypeVar("T")


def worth_retrying(error: discord.HTTPException) -> bool:
    return error.status == 429 or error.status >= 500


def wait_before(attempt: int, error: discord.HTTPException) -> float:
    """Seconds before try attempt + 1 (attempt counts from 0)."""
    backoff = min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** attempt)
    try:
        asked = float(error.response.headers.get("Retry-After") or 0)
    except (AttributeError, ValueError):
        asked = 0.0
    return max(backoff, min(asked, LONGEST_WAIT_S))


async def with_retries(post: Callable[[], Awaitable[T]], what: str) -> T:
    """post() until it succeeds, a final refusal, or ATTEMPTS tries (the last error raised)."""
    for attempt in range(ATTEMPTS):
        try:
            return await post()
        except discord.HTTPException as error:
            if not worth_retrying(error) or attempt == ATTEMPTS - 1:
                raise
            wait = wait_before(attempt, error)
            log.warning("%s: Discord answered %s; trying again in %.1f s", what,
                        error.status, wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
