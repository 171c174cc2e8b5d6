"""Redis restarted under load (issue 17.8): the bot and worker processes, the Discord
double and PostgreSQL keep going while our own redis-server (append-only, fsync every
second, as in production) is killed and started again on the same files. Nothing is
lost, nothing is posted twice; a job whose last second of writes the crash dropped may
run twice on the GPU (it is re-enqueued from PostgreSQL), never be posted twice."""

from __future__ import annotations

import asyncio

import pytest

from generation.queue import JobQueue
from tests.bot_stack import serving
from tests.fault_figures import fault_figures, grids_by_job

pytestmark = pytest.mark.timeout(500)


@pytest.fixture
def redis_url(own_redis):
    """The stack's Redis is our own redis-server, which the test restarts."""
    return own_redis.url


async def burst(double, members: tuple[str, ...], label: str) -> None:
    for member in members:
        for n in range(3):  # a member's running cap
            await double.slash(member, "general", "imagine", prompt=f"{label} {member} {n}",
                               model="tiny-random")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
async def test_redis_restarted_under_load_loses_nothing_and_posts_once(
        double, db, stack, redis_client, keys, own_redis, how):
    await serving(JobQueue(redis_client, keys), "tiny-random")
    await burst(double, ("alice", "bob"), "before")
    await double._until(lambda: len(grids_by_job(double)) >= 1, 120, "no grid before")
    own_redis.kill() if how == "SIGKILL" else own_redis.stop()  # mid-run: 5 jobs to go
    await asyncio.sleep(1)
    own_redis.start()
    await double._until(lambda: len(grids_by_job(double)) >= 6, 240,
                        "the jobs started before the restart were not all posted")
    await burst(double, ("alice",), "after")
    await double._until(lambda: len(grids_by_job(double)) >= 9, 240,
                        "the jobs started after the restart were not all posted")
    await asyncio.sleep(5)  # a second post would show by now
    figures = await fault_figures(double, db, stack.workers)
    assert (figures["jobs"], figures["lost"], figures["posted twice"]) == (9, 0, 0)
    assert all(runs >= 1 for runs in figures["gpu runs per job"])
    if how == "SIGTERM":  # a clean shutdown writes the AOF out: nothing runs twice
        assert figures["gpu runs per job"] == [1] * 9
