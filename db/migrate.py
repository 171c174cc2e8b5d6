"""Numbered plain-SQL migrations, each applied once, in one transaction, under an advisory lock.

Two hosts starting at once both take the lock in turn: the second finds the
first one's work recorded and applies nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import asyncpg

# pg_advisory_lock takes a bigint; this one is ours ("dreamloop" in ASCII, as a number).
MIGRATION_LOCK = int.from_bytes(b"drmloop", "big")
# Waiting for another host's migrations, or one long migration, may take a while.
MIGRATION_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class Migration:
    name: str  # e.g. 0001_initial.sql
    sql: str


def shipped_migrations() -> list[Migration]:
    """The migrations in db/migrations, in the order of their numbers."""
    folder = resources.files("db").joinpath("migrations")
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".sql"))
    return [Migration(f.name, f.read_text()) for f in files]


async def migrate(connection: asyncpg.Connection,
                  migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; returns the names applied (empty when up to date)."""
    migrations = shipped_migrations() if migrations is None else migrations
    await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK,
                             timeout=MIGRATION_TIMEOUT_S)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row["name"] for row in await connection.fetch("SELECT name FROM schema_migrations")}
        missing = [m for m in migrations if m.name not in done]
        for migration in missing:
            await _apply(connection, migration)
        return [m.name for m in missing]
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def _apply(connection: asyncpg.Connection, migration: Migration) -> None:
    async with connection.transaction():
        await connection.execute(migration.sql, timeout=MIGRATION_TIMEOUT_S)
        await connection.execute("INSERT INTO schema_migrations (name) VALUES ($1)",
                                 migration.name)
