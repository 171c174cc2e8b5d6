"""The asyncpg pool: sized per process, with a command timeout and jsonb as Python objects."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# asyncpg has no command timeout by default: a stuck query would hold a connection forever.
COMMAND_TIMEOUT_S = 30.0


CONNECT_TIMEOUT_S = 10.0
# Nor has its acquire: with every connection stuck, a caller would wait forever.
ACQUIRE_TIMEOUT_S = 10.0
# What a connection fails with when the server is gone, restarting or full.
UNREACHABLE = (TimeoutError, OSError, asyncpg.PostgresConnectionError,
               asyncpg.exceptions.OperatorInterventionError,
               asyncpg.exceptions.InsufficientResourcesError, asyncpg.InterfaceError)


class DatabaseUnavailable(ConnectionError):
    """The database cannot be reached or refuses us; the message says where and why. An
    OSError, so code that already rides out a lost connection rides out this too."""


class Pool:
    """asyncpg's pool whose acquire waits at most acquire_timeout_s, and says
    DatabaseUnavailable when no connection can be had; the rest is asyncpg's own."""

    def __init__(self, pool: asyncpg.Pool, url: str, acquire_timeout_s: float):
        self.pool, self.url, self.acquire_timeout_s = pool, url, acquire_timeout_s

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator:
        try:
            connection = await self.pool.acquire(timeout=timeout or self.acquire_timeout_s)
        except UNREACHABLE as error:
            raise DatabaseUnavailable(_cannot_connect(self.url, error)) from error
        try:
            yield connection
        finally:
            await self.pool.release(connection)

    def __getattr__(self, name: str):
        return getattr(self.pool, name)  # close, get_size, execute, fetch…


async def create_pool(url: str, size: int, server_settings: dict[str, str] | None = None,
                      acquire_timeout_s: float = ACQUIRE_TIMEOUT_S) -> Pool:
    """A pool of at most `size` connections (PostgreSQL allows ~100 in all: share them out)."""
    if size < 1:
        raise ValueError(f"size is {size}: a pool needs at least 1 connection")
    if not acquire_timeout_s > 0:
        raise ValueError(f"acquire_timeout_s is {acquire_timeout_s}: it must be above 0")
    return Pool(await _asyncpg_pool(url, size, server_settings), url, acquire_timeout_s)


async def _asyncpg_pool(url: str, size: int, server_settings: dict[str, str] | None
                        ) -> asyncpg.Pool:
    try:
        return await asyncpg.create_pool(
            url, min_size=1, max_size=size, command_timeout=COMMAND_TIMEOUT_S,
            timeout=CONNECT_TIMEOUT_S, init=_init_connection, server_settings=server_settings)
    except (TimeoutError, OSError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as error:
        raise DatabaseUnavailable(_cannot_connect(url, error)) from error


async def connect(url: str, server_settings: dict[str, str] | None = None) -> asyncpg.Connection:
    """One connection, set up like the pool's (for commands such as migrate)."""
    try:
        connection = await asyncpg.connect(url, command_timeout=COMMAND_TIMEOUT_S,
                                           timeout=CONNECT_TIMEOUT_S,
                                           server_settings=server_settings)
    except (TimeoutError, OSError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as error:
        raise DatabaseUnavailable(_cannot_connect(url, error)) from error
    await _init_connection(connection)
    return connection


@contextlib.asynccontextmanager
async def fresh_schema(url: str, prefix: str) -> AsyncIterator[str]:
    """The name of a new, empty schema (prefix_ and a random part), dropped afterwards with
    everything in it: for tests and benchmarks that must not touch real data."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await connect(url)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield name
        finally:
            await admin.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await admin.close()


def with_schema(url: str, schema: str) -> str:
    """The URL whose connections see only schema (asyncpg passes unknown URL parameters to
    the server as settings)."""
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"


def _cannot_connect(url: str, error: Exception) -> str:
    return f"cannot connect to the database at {redact(url)}: {error or type(error).__name__}"


def redact(url: str) -> str:
    """The URL without its password, fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads,
                                        schema="pg_catalog")
