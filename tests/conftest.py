"""Shared fixtures: one data folder and one tiny-random engine for the whole run."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from generation.registry import load_registry, tiny_random_spec

pytest_plugins = ["tests.bot_stack", "tests.redis_server"]  # `stack`; `own_redis`


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data folder shared by the session, so tiny-random is built once."""
    return tmp_path_factory.mktemp("dreamloop-data")


@pytest.fixture(scope="session")
def registry(data_dir):
    return load_registry(None, data_dir)


@pytest.fixture(scope="session")
def tiny_engine(data_dir):
    from generation.engine import Engine

    return Engine.load(tiny_random_spec(data_dir), device="cpu")


@pytest.fixture
def cli_env(data_dir) -> dict[str, str]:
    """Environment for running the dreamloop command in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOP_")}
    env["DREAMLOOP_DATA_DIR"] = str(data_dir)
    # Many bots and workers run at once in the tests: none takes the fixed metrics ports
    # (tests/test_metrics.py gives its processes free ones).
    env["DREAMLOOP_METRICS_PORT"] = "0"
    return env


# -- PostgreSQL ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """DREAMLOOP_TEST_DATABASE_URL when set (CI's server), else a throwaway embedded one."""
    url = os.environ.get("DREAMLOOP_TEST_DATABASE_URL")
    if url:
        return url
    from db.embedded import start_embedded_postgres

    return start_embedded_postgres(tmp_path_factory.mktemp("embedded"))


@pytest.fixture
async def db_schema(database_url):
    """A fresh, empty schema for one test, dropped afterwards."""
    from db.connection import fresh_schema

    async with fresh_schema(database_url, "test") as name:
        yield name


@pytest.fixture
async def db(database_url, db_schema):
    """A migrated pool whose connections see only this test's schema."""
    from db.connection import create_pool
    from db.migrate import migrate

    pool = await create_pool(database_url, size=20, server_settings={"search_path": db_schema})
    async with pool.acquire() as connection:
        await migrate(connection)
    try:
        yield pool
    finally:
        await pool.close()


# -- Redis ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """DREAMLOOP_TEST_REDIS_URL when set (CI's server), else a throwaway embedded one."""
    url = os.environ.get("DREAMLOOP_TEST_REDIS_URL")
    if url:
        return url
    from generation.redis_connection import start_embedded_redis

    return start_embedded_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def keys():
    """A key prefix of this test's own, so tests never see each other's streams."""
    from generation.keys import Keys

    return Keys(prefix=f"test:{uuid.uuid4().hex[:12]}:")


@pytest.fixture
async def redis_client(redis_url, keys):
    from generation.redis_connection import connect_redis, delete_keys

    client = connect_redis(redis_url)
    try:
        yield client
    finally:
        await delete_keys(client, keys.prefix)
        await client.aclose()


# -- Discord ---------------------------------------------------------------------------------

@pytest.fixture
async def double():
    """A local Discord (the discord_double package) on a random loopback port."""
    from discord_double import DiscordDouble

    double = DiscordDouble()
    await double.start()
    try:
        yield double
    finally:
        await double.stop()
