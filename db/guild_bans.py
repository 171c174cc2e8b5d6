"""Members banned from using the bot in one server (migration 0009)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Ban:
    guild_id: int
    member_id: int
    banned_by: int
    reason: str | None
    created_at: datetime


async def lock_member(conn: asyncpg.Connection, member_id: int) -> None:
    """The admission lock (bot/limits.py): a ban and a job being admitted are serialized."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", member_id)


async def add_ban(conn: asyncpg.Connection, guild_id: int, member_id: int, banned_by: int,
                  reason: str | None) -> bool:
    """False when the member is banned here already (the first ban and its reason stay)."""
    return await conn.fetchval(
        """INSERT INTO guild_bans (guild_id, member_id, banned_by, reason)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true""",
        guild_id, member_id, banned_by, reason) is not None


async def remove_ban(conn: asyncpg.Connection, guild_id: int, member_id: int) -> bool:
    """False when the member was not banned here."""
    return await conn.fetchval(
        "DELETE FROM guild_bans WHERE guild_id = $1 AND member_id = $2 RETURNING true",
        guild_id, member_id) is not None


async def is_banned(conn: asyncpg.Connection, guild_id: int | None, member_id: int) -> bool:
    if guild_id is None:
        return False
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM guild_bans WHERE guild_id = $1 AND member_id = $2)",
        guild_id, member_id)


async def list_bans(conn: asyncpg.Connection, guild_id: int, limit: int = 50) -> list[Ban]:
    """The server's bans, newest first."""
    rows = await conn.fetch(
        """SELECT guild_id, member_id, banned_by, reason, created_at FROM guild_bans
           WHERE guild_id = $1 ORDER BY created_at DESC LIMIT $2""", guild_id, limit)
    return [Ban(**row) for row in rows]
