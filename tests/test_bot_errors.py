"""Every interaction is answered when the servers behind the bot fail: PostgreSQL cut off
(through a proxy this test cuts, never the machine's server), Redis killed (a server of
this test's own), an image prompt that breaks in decoding. And a /cancel made while Redis
is down still stops the GPU once Redis is back, and nothing is posted for that job."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from bot.errors import DATABASE_DOWN, QUEUE_DOWN, member_message
from db.connection import DatabaseUnavailable, create_pool, with_schema
from generation.redis_connection import connect_redis
from tests.bot_stack import is_grid, reply_to
from tests.tcp_proxy import TcpProxy
from tests.test_worker import RedisServer

pytestmark = pytest.mark.timeout(400)


class PersistentRedis(RedisServer):
    """Our own Redis with an append-only file synced at every write, as production runs it:
    killed and started again, it comes back with its streams and pending entries."""

    def __init__(self, folder):
        super().__init__(folder)
        at = self.command.index("--appendonly")
        self.command[at + 1:at + 2] = ["yes", "--appendfsync", "always"]


@pytest.fixture
async def pg_proxy(database_url):
    proxy = TcpProxy.for_url(database_url)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture
async def own_redis(tmp_path):
    server = PersistentRedis(tmp_path)
    await server.start()
    yield server
    server.kill()


@pytest.fixture
def stack_overrides(pg_proxy, own_redis, database_url, db_schema) -> dict[str, str]:
    """The bot reaches PostgreSQL through the proxy, and the bot and worker use our Redis."""
    return {"DREAMLOOP_DATABASE_URL": with_schema(pg_proxy.url(database_url), db_schema),
            "DREAMLOOP_REDIS_URL": own_redis.url}


# -- the pool ------------------------------------------------------------------------------

async def test_a_pool_with_every_connection_in_use_gives_up_after_its_acquire_timeout(
        database_url):
    pool = await create_pool(database_url, size=1, acquire_timeout_s=0.5)
    try:
        async with pool.acquire():
            with pytest.raises(DatabaseUnavailable, match="cannot connect to the database"):
                async with pool.acquire():
                    pass
    finally:
        await pool.close()


async def test_a_cut_database_reads_as_unreachable_and_the_pool_recovers(database_url):
    proxy = TcpProxy.for_url(database_url)
    await proxy.start()
    pool = await create_pool(proxy.url(database_url), size=2)
    try:
        await proxy.cut()
        with pytest.raises(Exception) as caught:
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        assert member_message(caught.value) == DATABASE_DOWN
        await proxy.start()
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
        await proxy.cut()


# -- end to end ----------------------------------------------------------------------------

async def grid_for(double, prompt: str):
    await double.slash("alice", "general", "imagine", prompt=prompt, model="tiny-random")
    return await double.wait_for_message(
        "general", lambda m: is_grid(m) and prompt in m.content, timeout=180)


def job_of(grid) -> int:
    return int(grid.custom_ids()[0].split(":")[2])


async def test_with_the_database_cut_off_every_interaction_is_answered(
        double, db, stack, pg_proxy):
    grid = await grid_for(double, "a red kite")
    job = job_of(grid)
    await pg_proxy.cut()
    asked = [await double.slash("alice", "general", "info"),
             await double.slash("alice", "general", "cancel", job=job),
             await double.slash("alice", "general", "show", job=job),
             await double.slash("alice", "general", "settings me", aspect="3:2"),
             await double.slash("alice", "general", "settings server", reset=True),
             await double.slash("alice", "general", "imagine", prompt="a blue kite",
                                model="tiny-random"),
             await double.slash("alice", "general", "rate"),
             await double.slash("alice", "general", "leaderboard"),
             await double.slash("alice", "general", "models list"),
             await double.click("bob", grid, f"dl:u:{job}:1"),
             await double.click("bob", grid, f"dl:v:{job}:2"),
             await double.click("bob", grid, f"dl:r:{job}")]
    for interaction in asked:
        assert await reply_to(double, interaction) == DATABASE_DOWN, interaction.payload["data"]
    await pg_proxy.start()  # and once it is back, the bot works again
    info = await double.slash("alice", "general", "info")
    assert "Last 24 hours: 1 job(s)" in await reply_to(double, info)


async def test_with_redis_down_interactions_are_answered_and_a_cancel_still_stops_the_gpu(
        double, db, stack, own_redis, keys):
    grid = await grid_for(double, "a quick hare")
    slow = await double.slash("alice", "general", "imagine", prompt="a slow owl --steps 150",
                              model="tiny-random")
    status = await double.wait_for_message("general", lambda m: "a slow owl" in m.content)
    await double._until(lambda: "%)" in status.content, 120, "the slow job never started")
    async with db.acquire() as conn:
        slow_id = await conn.fetchval("SELECT id FROM jobs WHERE interaction_id = $1", slow.id)

    own_redis.kill()
    cancel = await double.slash("alice", "general", "cancel", job=slow_id)
    assert await reply_to(double, cancel) == (
        f"Job {slow_id} is cancelled; the job queue is unreachable right now, so its GPU "
        "stops drawing it as soon as the queue is back (nothing will be posted).")
    for interaction in (await double.click("bob", grid, f"dl:u:{job_of(grid)}:1"),
                        await double.click("bob", grid, f"dl:r:{job_of(grid)}"),
                        await double.slash("bob", "general", "show", job=job_of(grid))):
        assert await reply_to(double, interaction) == QUEUE_DOWN
    await own_redis.start()

    outcome = await outcome_of(connect_redis(own_redis.url), keys, slow_id)
    assert outcome["status"] == "cancelled"  # the worker stopped drawing it
    await grid_for(double, "a late moth")  # delivery has read everything before this one
    assert not any(is_grid(m) and "a slow owl" in m.content
                   for m in double.channel_messages("general"))
    async with db.acquire() as conn:
        row = await conn.fetchrow("SELECT status, result_message_id FROM jobs WHERE id = $1",
                                  slow_id)
    assert tuple(row) == ("cancelled", None)


async def outcome_of(client, keys, job_id: int) -> dict:
    """The worker's report on the job in the results stream, once it is there."""
    for _ in range(1200):
        for _, fields in await client.xrange(keys.results):
            if fields.get("job") == str(job_id):
                await client.aclose()
                return fields
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker never reported job {job_id}")


async def test_an_image_prompt_cut_short_is_answered_without_python_text(double, db, stack):
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 60).convert("RGB").save(buffer, format="PNG")
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    upload = double.upload("cut.png", truncated, "image/png")
    interaction = await double.slash("alice", "general", "imagine", prompt="a fox",
                                     model="tiny-random", image=upload)
    text = await reply_to(double, interaction)
    assert text and "object at 0x" not in text and "Error" not in text
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0
