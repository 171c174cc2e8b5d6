"""A server's banned words and patterns (migration 0007), and whether dreamloop's default
list applies there (guilds.settings->'default_rules', absent: it does)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class ModerationRule:
    id: int
    guild_id: int
    pattern: str
    name: str | None
    created_by: int
    created_at: datetime


_COLUMNS = "id, guild_id, pattern, name, created_by, created_at"


async def add_rule(conn: asyncpg.Connection, guild_id: int, pattern: str, name: str | None,
                   created_by: int) -> ModerationRule | None:
    """The new rule; None when the server has this pattern already."""
    row = await conn.fetchrow(
        f"""INSERT INTO moderation_rules (guild_id, pattern, name, created_by)
            VALUES ($1, $2, $3, $4) ON CONFLICT (guild_id, pattern) DO NOTHING
            RETURNING {_COLUMNS}""", guild_id, pattern, name, created_by)
    return ModerationRule(**row) if row else None


async def find_pattern(conn: asyncpg.Connection, guild_id: int,
                       pattern: str) -> ModerationRule | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM moderation_rules WHERE guild_id = $1 AND pattern = $2",
        guild_id, pattern)
    return ModerationRule(**row) if row else None


async def remove_rule(conn: asyncpg.Connection, guild_id: int,
                      rule_id: int) -> ModerationRule | None:
    """The removed rule; None when this server has no rule with that id."""
    row = await conn.fetchrow(
        f"DELETE FROM moderation_rules WHERE guild_id = $1 AND id = $2 RETURNING {_COLUMNS}",
        guild_id, rule_id)
    return ModerationRule(**row) if row else None


async def guild_rules(conn: asyncpg.Connection, guild_id: int) -> list[ModerationRule]:
    """The server's rules, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM moderation_rules WHERE guild_id = $1 ORDER BY id", guild_id)
    return [ModerationRule(**row) for row in rows]


async def count_rules(conn: asyncpg.Connection, guild_id: int) -> int:
    return await conn.fetchval("SELECT count(*) FROM moderation_rules WHERE guild_id = $1",
                               guild_id)


async def default_rules_on(conn: asyncpg.Connection, guild_id: int) -> bool:
    """Whether dreamloop's default list applies in the server (it does until turned off)."""
    value = await conn.fetchval("SELECT settings->'default_rules' FROM guilds WHERE id = $1",
                                guild_id)
    return value is None or value is True
