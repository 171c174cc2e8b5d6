"""Delivery under faults caused for real, end to end (the bot and worker processes, the
Discord double, PostgreSQL, and a redis-server of the test's own): Redis hanging past the
client's retries, and PostgreSQL killing the delivering backend. Nothing is lost, nothing
is posted twice, and each job runs on the GPU once (issue 17, points 1 and 3)."""

from __future__ import annotations

import asyncio

import pytest

from generation.keys import DELIVERY_GROUP
from generation.queue import JobQueue
from tests.bot_stack import serving
from tests.fault_figures import fault_figures, grids_by_job

pytestmark = pytest.mark.timeout(400)

# Two seconds a try (above delivery's one-second BLOCK), six tries with backoff: a hang
# longer than about 17 s reaches the bot's loops as redis.TimeoutError.
SOCKET_TIMEOUT_S = 2
HANG_S = 25


@pytest.fixture
def redis_url(own_redis):
    """The stack's Redis is our own redis-server, which these tests hang and resume."""
    return f"{own_redis.url}?socket_timeout={SOCKET_TIMEOUT_S}"


async def imagine(double, prompt: str, flags: str = "") -> None:
    await double.slash("alice", "general", "imagine", prompt=f"{prompt} {flags}",
                       model="tiny-random")
    await double.wait_for_message("general", lambda m: f"{prompt}**" in m.content)


async def all_posted(double, count: int, timeout: float = 180) -> None:
    await double._until(lambda: len(grids_by_job(double)) >= count, timeout,
                        f"fewer than {count} grids were posted")
    await asyncio.sleep(5)  # a second post, or a second GPU run, would show by now


async def test_a_redis_hang_past_the_retries_loses_nothing_and_posts_once(
        double, db, stack, redis_client, keys, own_redis):
    """issue 17.1: redis.TimeoutError used to end delivery for good (then the reconciler
    re-ran every job every 30 s)."""
    await serving(JobQueue(redis_client, keys), "tiny-random")
    await imagine(double, "an owl in the hang")
    own_redis.hang()
    await asyncio.sleep(HANG_S)  # delivery's reads time out on every try
    own_redis.resume()
    await imagine(double, "an owl after the hang")
    await all_posted(double, 2)
    figures = await fault_figures(double, db, stack.workers)
    assert (figures["jobs"], figures["lost"], figures["posted twice"]) == (2, 0, 0)
    assert figures["gpu runs per job"] == [1, 1]


async def blocked_by(db, locker_pid: int, fragment: str) -> int:
    """The backend waiting on the locker's lock whose query contains fragment."""
    for _ in range(1200):
        async with db.acquire() as conn:  # outside the locker's transaction: fresh stats
            pid = await conn.fetchval(
                """SELECT pid FROM pg_stat_activity
                   WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE '%' || $2 || '%'""",
                locker_pid, fragment)
        if pid is not None:
            return pid
        await asyncio.sleep(0.1)
    raise AssertionError(f"no backend blocked by the lock ran {fragment!r}")


async def test_a_delivery_whose_database_backend_is_killed_is_retried_and_posted_once(
        double, db, stack, redis_client, keys):
    """issue 17.3: a delivery that failed on PostgreSQL stayed pending until the bot's
    next start. Its backend is terminated mid-completion (pg_terminate_backend); the
    pending result is claimed again and posted, once."""
    await serving(JobQueue(redis_client, keys), "tiny-random")
    async with db.acquire() as locker, locker.transaction():
        # Completion inserts the images: it waits on this lock with its job row updated.
        await locker.execute("LOCK TABLE images IN SHARE MODE")
        await imagine(double, "a fox in the blip")
        victim = await blocked_by(db, await locker.fetchval("SELECT pg_backend_pid()"),
                                  "INSERT INTO images")
        async with db.acquire() as conn:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", victim)
        await asyncio.sleep(1)  # the bot saw its connection die
    pending = await redis_client.xpending(keys.results, DELIVERY_GROUP)
    assert pending["pending"] == 1  # the result waits for a retry, not for a restart
    await all_posted(double, 1)
    figures = await fault_figures(double, db, stack.workers)
    assert (figures["jobs"], figures["lost"], figures["posted twice"]) == (1, 0, 0)
    assert figures["gpu runs per job"] == [1]
