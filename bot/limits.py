"""Member limits, held in PostgreSQL so they survive restarts and hold across bot processes.

Checked inside the transaction that creates the job, under a per-member advisory lock:
two requests racing for a member's last slot are serialized, and exactly one gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from bot.fair_share import TURBO_FACTOR
from bot.guild_limits import allowed_lane, limits_for
from db.guild_bans import is_banned
from db.jobs import member_load, member_usage
from db.members import get_settings

BANNED = "An admin of this server has stopped you using dreamloop here."


class LimitReached(Exception):
    """A member limit refused a job; the message says which limit and when it frees up."""


class Banned(LimitReached):
    """The member is banned from using the bot in the job's server (/mod ban)."""

    def __init__(self):
        super().__init__(BANNED)


@dataclass(frozen=True)
class Limits:
    max_running: int = 3  # jobs handed to the GPUs at once; more wait their turn
    max_queued: int = 10  # jobs waiting to start
    per_minute: int = 10  # jobs started in any minute
    fast_gpu_seconds: float = 900.0  # a day's fast-lane GPU time; beyond it, the relax lane
    job_estimate_s: float = 10.0  # what a job still running or waiting counts against it
    shows_per_minute: int = 5  # /show posts by one member in a minute (bot/show.py)


async def lock_member(conn: asyncpg.Connection, member_id: int) -> None:
    """Serialize this member's admissions and dispatches until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", member_id)


async def admit(conn: asyncpg.Connection, limits: Limits, member_id: int,
                lane: str | None = None, guild_id: int | None = None) -> str:
    """Refuse with LimitReached (Banned for a member banned in the server), or say the lane
    of the member's next job: the one asked for (else the member's default), or relax once
    the day's fast GPU time is spent, within the lanes the server allows. The server's own
    limits apply where it set them (bot/guild_limits.py). The concurrent cap (max_running)
    is the dispatcher's: a job beyond it waits its turn."""
    await lock_member(conn, member_id)
    if await is_banned(conn, guild_id, member_id):
        raise Banned()
    guild = await get_settings(conn, "guild", guild_id) if guild_id is not None else {}
    limits = limits_for(limits, guild)
    load = await member_load(conn, member_id)
    if load.queued >= limits.max_queued:
        raise LimitReached(f"You have {load.queued} jobs waiting, the most allowed; you can add "
                           "another as soon as one of them starts (/info shows them).")
    now = datetime.now(UTC)
    recent = await member_usage(conn, member_id, now - timedelta(minutes=1))
    if recent.jobs >= limits.per_minute:
        raise LimitReached(f"You started {recent.jobs} jobs in the last minute, the most "
                           f"allowed; try again in {await _seconds_until_free(conn, member_id)} s.")
    return allowed_lane(await _lane(conn, limits, member_id, lane), guild)


async def _lane(conn: asyncpg.Connection, limits: Limits, member_id: int,
                asked: str | None) -> str:
    """relax when asked or the member's default (/relax, /settings me), or when today's
    fast GPU time is spent; else the lane asked for, or the default (fast)."""
    lane = asked or (await get_settings(conn, "member", member_id)).get("lane") or "fast"
    if lane == "relax":
        return "relax"
    spent = await _gpu_seconds_today(conn, member_id, limits.job_estimate_s)
    return lane if spent < limits.fast_gpu_seconds else "relax"


async def _seconds_until_free(conn: asyncpg.Connection, member_id: int) -> int:
    oldest = await conn.fetchval(
        """SELECT min(created_at) FROM jobs
           WHERE member_id = $1 AND created_at >= now() - interval '1 minute'""", member_id)
    return max(1, 60 - int((datetime.now(UTC) - oldest).total_seconds()))


async def _gpu_seconds_today(conn: asyncpg.Connection, member_id: int,
                             estimate_s: float) -> float:
    """GPU time finished today (UTC), plus an estimate for jobs not finished yet; a turbo
    job counts twice (as in Midjourney), a relax job not at all."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return await conn.fetchval(
        """SELECT coalesce(sum(gpu_ms * weight) FILTER (WHERE finished_at >= $2), 0) / 1000.0
                  + coalesce(sum(weight) FILTER (WHERE status IN ('queued', 'running')), 0)
                    * $3
           FROM (SELECT *, CASE lane WHEN 'turbo' THEN $4::float8 WHEN 'fast' THEN 1.0 ELSE 0.0 END
                           AS weight
                 FROM jobs WHERE member_id = $1) AS mine""",
        member_id, midnight, estimate_s, TURBO_FACTOR)
