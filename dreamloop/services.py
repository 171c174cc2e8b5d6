"""The servers dreamloop talks to: the configured ones, or embedded ones under the data folder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dreamloop.settings import Settings


def database_url(settings: Settings) -> str:
    """DREAMLOOP_DATABASE_URL, or an embedded PostgreSQL started under the data folder."""
    if settings.database_url:
        return settings.database_url
    from db.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


@contextlib.asynccontextmanager
async def database_connection(settings: Settings) -> AsyncIterator:
    """One connection for a command's short work, closed afterwards."""
    from db.connection import connect

    connection = await connect(database_url(settings))
    try:
        yield connection
    finally:
        await connection.close()


async def migrate_database(settings: Settings) -> list[str]:
    """Apply the migrations not yet applied; their names."""
    from db.migrate import migrate

    async with database_connection(settings) as connection:
        return await migrate(connection)


async def open_database_pool(settings: Settings):
    """The process's asyncpg pool, sized by DREAMLOOP_DATABASE_POOL_SIZE."""
    from db.connection import create_pool

    return await create_pool(database_url(settings), settings.database_pool_size,
                             acquire_timeout_s=settings.database_acquire_timeout_s)


def redis_url(settings: Settings) -> str:
    """DREAMLOOP_REDIS_URL, or an embedded Redis (append-only) under the data folder."""
    if settings.redis_url:
        return settings.redis_url
    from generation.redis_connection import start_embedded_redis

    return start_embedded_redis(settings.data_dir)


def blob_store(settings: Settings):
    """DREAMLOOP_BLOB_URL, or the folder data_dir/blobs."""
    from generation.blobs import open_blob_store

    return open_blob_store(settings.blob_url or str(settings.data_dir / "blobs"))


def job_queue(settings: Settings):
    from generation.keys import Keys
    from generation.queue import JobQueue
    from generation.redis_connection import connect_redis

    return JobQueue(connect_redis(redis_url(settings)), Keys(settings.redis_prefix),
                    lease_ms=settings.lease_ms, max_deliveries=settings.max_deliveries)


def pool_settings(settings: Settings, lanes: tuple[str, ...]):
    from generation.pool import PoolSettings

    return PoolSettings(max_batch=settings.max_batch, coalesce_ms=settings.coalesce_ms,
                        relax_max_wait_ms=int(settings.relax_max_wait_s * 1000), lanes=lanes,
                        image_classifier=settings.image_classifier)
