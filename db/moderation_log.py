"""The moderation log: one row per admin action or bot refusal, per server (migration 0006)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class LogEntry:
    id: int
    guild_id: int
    actor_id: int | None
    action: str
    target_id: int | None
    detail: dict
    created_at: datetime


async def record_action(conn: asyncpg.Connection, guild_id: int, action: str, *,
                        actor_id: int | None = None, target_id: int | None = None,
                        detail: dict | None = None) -> int:
    """Append one entry; actor_id None means the bot acted on its own."""
    return await conn.fetchval(
        """INSERT INTO moderation_log (guild_id, actor_id, action, target_id, detail)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        guild_id, actor_id, action, target_id, detail or {})


async def recent_actions(conn: asyncpg.Connection, guild_id: int, limit: int = 20,
                         action: str | None = None,
                         target_id: int | None = None) -> list[LogEntry]:
    """This server's latest entries, newest first (only one action's, or only those about
    one member, when named)."""
    rows = await conn.fetch(
        """SELECT id, guild_id, actor_id, action, target_id, detail, created_at
           FROM moderation_log WHERE guild_id = $1 AND ($3::text IS NULL OR action = $3)
             AND ($4::bigint IS NULL OR target_id = $4)
           ORDER BY id DESC LIMIT $2""", guild_id, limit, action, target_id)
    return [LogEntry(**row) for row in rows]
