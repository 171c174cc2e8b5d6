"""Readings for the bot's metrics and readiness: what waits for the dispatcher, and a ping."""

from __future__ import annotations

import asyncpg


async def waiting_counts(conn: asyncpg.Connection) -> dict[tuple[str, str], int]:
    """Jobs recorded but not yet put in a stream, by (model, lane)."""
    rows = await conn.fetch(
        """SELECT model, lane, count(*) AS n FROM jobs
           WHERE status = 'queued' AND dispatched_at IS NULL GROUP BY model, lane""")
    return {(row["model"], row["lane"]): row["n"] for row in rows}


async def ping(conn: asyncpg.Connection) -> None:
    """Raises unless PostgreSQL answers."""
    await conn.fetchval("SELECT 1")
