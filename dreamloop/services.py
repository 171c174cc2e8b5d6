"""The servers dreamloop talks to: the configured ones, or embedded ones under the data folder."""

from __future__ import annotations

from dreamloop.settings import Settings


def database_url(settings: Settings) -> str:
    """DREAMLOOP_DATABASE_URL, or an embedded PostgreSQL started under the data folder."""
    if settings.database_url:
        return settings.database_url
    from db.embedded import start_embedded_postgres

    return start_embedded_postgres(settings.data_dir)


async def open_database_pool(settings: Settings):
    """The process's asyncpg pool, sized by DREAMLOOP_DATABASE_POOL_SIZE."""
    from db.connection import create_pool

    return await create_pool(database_url(settings), settings.database_pool_size)
