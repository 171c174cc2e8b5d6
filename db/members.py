"""Members and guilds, and their settings (JSON objects, merged key by key)."""

from __future__ import annotations

import asyncpg

# Table names come from this fixed map, never from input.
_TABLES = {"member": "members", "guild": "guilds"}


async def get_settings(conn: asyncpg.Connection, who: str, snowflake: int) -> dict:
    """A member's or guild's settings; {} when they have none yet."""
    settings = await conn.fetchval(f"SELECT settings FROM {_TABLES[who]} WHERE id = $1",
                                   snowflake)
    return settings or {}


async def member_and_guild_settings(conn: asyncpg.Connection, member_id: int,
                                    guild_id: int | None) -> tuple[dict, dict]:
    """Both at once (one round trip: /imagine reads them before it answers)."""
    row = await conn.fetchrow(
        """SELECT (SELECT settings FROM members WHERE id = $1) AS member,
                  (SELECT settings FROM guilds WHERE id = $2) AS guild""", member_id, guild_id)
    return row["member"] or {}, row["guild"] or {}


async def update_settings(conn: asyncpg.Connection, who: str, snowflake: int,
                          changes: dict) -> dict:
    """Merge changes into the settings (a key set to None is removed); returns the result."""
    table = _TABLES[who]
    removed = [key for key, value in changes.items() if value is None]
    kept = {key: value for key, value in changes.items() if value is not None}
    return await conn.fetchval(
        f"""INSERT INTO {table} (id, settings) VALUES ($1, $2)
            ON CONFLICT (id) DO UPDATE SET settings = ({table}.settings || $2) - $3::text[]
            RETURNING settings""", snowflake, kept, removed)


async def delete_member(conn: asyncpg.Connection, member_id: int) -> bool:
    """Delete a member and, by cascade, their jobs, images, feedback and comparisons."""
    return await conn.fetchval("DELETE FROM members WHERE id = $1 RETURNING true",
                               member_id) is not None
