"""Backoff between bot starts, so a crash loop cannot use up Discord's IDENTIFYs.

Discord allows 1,000 IDENTIFYs a day per bot token and resets the token beyond that
(REFERENCE.md §1). Within one process discord.py resumes the session or reconnects with
its own exponential backoff; but a process that crashes and is restarted at once (docker's
restart policy resets its delay after 10 s up; systemd's Restart=always) would IDENTIFY at
every start. So each start is recorded in Redis (it outlives the process): a start within
HEALTHY_S of the last connect continues a streak and waits base, 2×base, 4×base … up to
CAP_S before connecting; a crash loop then IDENTIFYs at most about 150 times a day. A bot
that stayed up HEALTHY_S starts again at once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as redis

log = logging.getLogger(__name__)

BASE_S = 5.0
CAP_S = 600.0  # a crash loop: at most 86,400 / 600 = 144 IDENTIFYs a day once at the cap
HEALTHY_S = 600.0  # up this long after connecting: the next start owes no wait
DAY_S = 86_400


def plan_start(last_connect: float, streak: int, now: float, base_s: float = BASE_S,
               cap_s: float = CAP_S) -> tuple[float, int]:
    """(seconds to wait, streak) for a start at now, the last connect at last_connect."""
    if now - last_connect >= HEALTHY_S:
        return 0.0, 0
    return min(cap_s, base_s * 2 ** streak), streak + 1


async def record_start(client: redis.Redis, key: str, base_s: float = BASE_S,
                       now: float | None = None) -> tuple[float, int]:
    """Record this start (atomically: shards may start together); returns its plan."""
    now = time.time() if now is None else now

    async def plan(pipe) -> tuple[float, int]:
        state = await pipe.hgetall(key)
        delay, streak = plan_start(float(state.get("connect", "-inf")),
                                   int(state.get("streak", 0)), now, base_s)
        pipe.multi()
        pipe.hset(key, mapping={"connect": now + delay, "streak": streak})
        pipe.expire(key, DAY_S)
        return delay, streak

    return await client.transaction(plan, key, value_from_callable=True)


async def wait_before_connecting(client: redis.Redis, key: str,
                                 base_s: float = BASE_S) -> float:
    """Record this start and wait as its streak of quick restarts demands; the wait."""
    try:
        delay, streak = await record_start(client, key, base_s)
    except (redis.RedisError, OSError) as error:
        # Without Redis the bot cannot work anyway; one start without a wait is no loop.
        log.warning("could not record this start (%r); connecting without a wait", error)
        return 0.0
    if delay:
        log.warning("restart %d in a row within %g s of the last: waiting %g s before "
                    "connecting to Discord (it resets a token after 1,000 IDENTIFYs a day)",
                    streak, HEALTHY_S, delay)
        await asyncio.sleep(delay)
    return delay
