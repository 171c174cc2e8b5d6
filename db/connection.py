"""The asyncpg pool: sized per process, with a command timeout and jsonb as Python objects."""

from __future__ import annotations

import json

import asyncpg

# asyncpg has no command timeout by default: a stuck query would hold a connection forever.
COMMAND_TIMEOUT_S = 30.0


async def create_pool(url: str, size: int, server_settings: dict[str, str] | None = None
                      ) -> asyncpg.Pool:
    """A pool of at most `size` connections (PostgreSQL allows ~100 in all: share them out)."""
    if size < 1:
        raise ValueError(f"size is {size}: a pool needs at least 1 connection")
    return await asyncpg.create_pool(
        url, min_size=1, max_size=size, command_timeout=COMMAND_TIMEOUT_S, init=_init_connection,
        server_settings=server_settings)


async def connect(url: str, server_settings: dict[str, str] | None = None) -> asyncpg.Connection:
    """One connection, set up like the pool's (for commands such as migrate)."""
    connection = await asyncpg.connect(url, command_timeout=COMMAND_TIMEOUT_S,
                                       server_settings=server_settings)
    await _init_connection(connection)
    return connection


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads,
                                        schema="pg_catalog")
