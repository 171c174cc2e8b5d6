"""The reconciler: jobs PostgreSQL says are unfinished but Redis lost are queued again."""

from __future__ import annotations

import asyncio

import pytest

from bot.reconciler import Reconciler
from bot.services import BotServices
from db.jobs import create_job
from db.model_versions import ensure_model_version
from generation.blobs import LocalBlobStore
from generation.queue import JobQueue
from generation.redis_connection import delete_keys
from tests.factories import imagine_request
from tests.test_pool import running_pool, wait_for_results


@pytest.fixture
def services(db, redis_client, keys, registry, tmp_path) -> BotServices:
    queue = JobQueue(redis_client, keys, lease_ms=500)
    return BotServices(registry=registry, db=db, queue=queue,
                       blobs=LocalBlobStore(tmp_path / "blobs"))


async def age_all_jobs(services: BotServices) -> None:
    async with services.db.acquire() as conn:
        await conn.execute("""UPDATE jobs SET created_at = now() - interval '1 minute',
                                  dispatched_at = now() - interval '1 minute'""")


async def flush(services: BotServices) -> None:
    """What a Redis flush or restart without persistence does to our keys."""
    await delete_keys(services.queue.redis, services.queue.keys.prefix)


async def test_jobs_lost_in_a_flush_are_queued_again_once(services):
    jobs = [(await services.start_job(imagine_request(seed=i), interaction_id=i))[0]
            for i in range(3)]
    await flush(services)
    await age_all_jobs(services)
    reconciler = Reconciler(services)
    assert sorted(await reconciler.reconcile_once()) == sorted(j.id for j in jobs)
    assert await reconciler.reconcile_once() == []  # they have entries again
    stream = services.queue.keys.jobs("tiny-random", "fast")
    assert await services.queue.redis.xlen(stream) == 3


async def test_a_job_recorded_but_never_queued_is_queued(services):
    async with services.db.acquire() as conn:
        version = await ensure_model_version(conn, "tiny-random", "tiny-random", "builtin")
        job, _ = await create_job(conn, imagine_request(), model_version_id=version.id)
    await age_all_jobs(services)
    assert await Reconciler(services).reconcile_once() == [job.id]


async def test_young_jobs_and_jobs_with_entries_are_left_alone(services):
    await services.start_job(imagine_request(), interaction_id=1)
    taken = await services.queue.take("worker", [(services.queue.keys.jobs(
        "tiny-random", "fast"), "fast")], count=1)
    assert taken  # leased to a worker: its entry is pending, not lost
    await services.start_job(imagine_request(seed=2), interaction_id=2)
    assert await Reconciler(services).reconcile_once() == []
    await age_all_jobs(services)
    assert await Reconciler(services).reconcile_once() == []


async def test_two_reconcilers_at_once_queue_each_lost_job_once(services):
    for i in range(4):
        await services.start_job(imagine_request(seed=i), interaction_id=i)
    await flush(services)
    await age_all_jobs(services)
    first, second = await asyncio.gather(Reconciler(services).reconcile_once(),
                                         Reconciler(services).reconcile_once())
    assert len(first) + len(second) == 4
    assert await services.queue.redis.xlen(services.queue.keys.jobs("tiny-random", "fast")) == 4


async def test_after_a_flush_every_job_is_finished_exactly_once(services, tiny_engine):
    for i in range(3):
        await services.start_job(imagine_request(seed=i), interaction_id=i)
    await flush(services)
    await age_all_jobs(services)
    await Reconciler(services).reconcile_once()
    async with running_pool(tiny_engine, services.queue, services.blobs):
        outcomes = await wait_for_results(services.queue, 3)
        await asyncio.sleep(1)  # a duplicate would show up by now
        outcomes = [f for _, f in await services.queue.redis.xrange(
            services.queue.keys.results)]
    assert sorted(o["job"] for o in outcomes) == sorted({o["job"] for o in outcomes})
    assert len(outcomes) == 3
    assert await services.queue.redis.hlen(services.queue.keys.entries) == 0


async def test_jobs_finished_but_not_yet_delivered_are_not_run_again(services, tiny_engine):
    """A worker finished the jobs; PostgreSQL has not heard (delivery is behind, or
    PostgreSQL was down for a while). Their stream entries are gone, their results wait:
    the reconciler must leave them alone (issue 17: 2 of 2 jobs ran twice)."""
    for i in range(2):
        await services.start_job(imagine_request(seed=i), interaction_id=i)
    async with running_pool(tiny_engine, services.queue, services.blobs) as pool:
        # The jobs wait in PostgreSQL until dispatched, one ahead per worker: the bot's
        # dispatcher loop hands the second over once the first is taken.
        dispatching = asyncio.create_task(services.dispatcher.run())
        try:
            await wait_for_results(services.queue, 2)
        finally:
            dispatching.cancel()
        await age_all_jobs(services)  # still 'queued' in PostgreSQL, old enough to reconcile
        assert await Reconciler(services).reconcile_once() == []
        await asyncio.sleep(1)  # a re-run would have finished by now
    runs = [stats.job_id for stats in pool.stats]
    assert sorted(runs) == sorted(set(runs)) and len(runs) == 2  # GPU runs per job: 1
    assert len(await services.queue.redis.xrange(services.queue.keys.results)) == 2
