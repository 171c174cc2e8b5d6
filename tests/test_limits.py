"""Member limits in PostgreSQL: they refuse clearly, hold under races and survive restarts."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.limits import LimitReached, Limits
from bot.services import BotServices
from db.jobs import finish_job, member_load, queue_position
from generation.blobs import LocalBlobStore
from generation.queue import JobQueue
from tests.factories import imagine_request

MEMBER = 4242
interaction_ids = itertools.count(1)


def services_with(db, redis_client, keys, registry, tmp_path, **limits) -> BotServices:
    """A bot's services; a new one stands for a restarted bot on the same database. The
    streams take 10 jobs ahead: these tests are about the member's caps, not the
    dispatcher's ahead limit (tests/test_dispatch.py)."""
    return BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                       blobs=LocalBlobStore(tmp_path / "blobs"), limits=Limits(**limits),
                       dispatch_ahead=10)


async def start(services: BotServices, **changes):
    return await services.start_job(imagine_request(user_id=MEMBER, **changes),
                                    next(interaction_ids))


async def test_the_11th_queued_job_is_refused_saying_when_it_frees_up(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    for _ in range(10):
        await start(services)
    with pytest.raises(LimitReached, match="You have 10 jobs waiting, the most allowed; you "
                                           "can add another as soon as one of them starts"):
        await start(services)
    restarted = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    with pytest.raises(LimitReached, match="10 jobs waiting"):  # the limit survives a restart
        await start(restarted)


async def test_two_requests_racing_for_the_last_slot_admit_exactly_one(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, max_queued=3,
                             per_minute=100)
    await start(services)
    await start(services)
    outcomes = await asyncio.gather(start(services), start(services), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["LimitReached", "tuple"]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 3


async def test_too_many_jobs_in_a_minute_are_refused_with_the_wait(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=2)
    await start(services)
    await start(services)
    with pytest.raises(LimitReached, match=r"You started 2 jobs in the last minute, the most "
                                           r"allowed; try again in \d+ s\."):
        await start(services)


async def test_a_spent_fast_quota_sends_jobs_to_the_relax_lane(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100,
                             fast_gpu_seconds=25, job_estimate_s=10, max_running=10)
    lanes = [(await start(services))[0].lane for _ in range(4)]
    assert lanes == ["fast", "fast", "fast", "relax"]  # 0, 10, 20 s spent, then 30 ≥ 25
    relax = services.queue.keys.jobs("tiny-random", "relax")
    assert await services.queue.redis.xlen(relax) == 1


async def test_a_retry_at_the_limit_returns_the_job_it_already_made(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, max_queued=1)
    job, created = await services.start_job(imagine_request(user_id=MEMBER), 777)
    again, created_again = await services.start_job(imagine_request(user_id=MEMBER), 777)
    assert created and not created_again and again.id == job.id


async def test_two_requests_racing_for_the_last_fast_second_get_one_fast_job(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100,
                             fast_gpu_seconds=15, job_estimate_s=10)
    await start(services)  # 10 of 15 fast seconds: one more fits, not two
    (first, _), (second, _) = await asyncio.gather(start(services), start(services))
    assert sorted([first.lane, second.lane]) == ["fast", "relax"]


async def stream_lengths(services: BotServices) -> int:
    return await services.queue.redis.xlen(services.queue.keys.jobs("tiny-random", "fast"))


async def test_a_4th_concurrent_job_waits_for_a_slot_instead_of_taking_a_gpu(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    jobs = [(await start(services))[0] for _ in range(5)]
    assert [job.dispatched_at is not None for job in jobs] == [True] * 3 + [False] * 2
    assert await stream_lengths(services) == 3
    async with db.acquire() as conn:
        assert await queue_position(conn, jobs[3].id) is None  # not in a stream yet
        await finish_job(conn, jobs[0].id, "failed", "test")
    restarted = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    assert [job.id for job in await restarted.dispatch_waiting(MEMBER)] == [jobs[3].id]
    assert await restarted.dispatch_waiting(MEMBER) == []  # 3 in flight again
    assert await stream_lengths(services) == 4


async def test_racing_dispatches_never_exceed_the_cap(db, redis_client, keys, registry,
                                                      tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    jobs = [(await start(services))[0] for _ in range(6)]
    async with db.acquire() as conn:
        for job in jobs[:3]:
            await finish_job(conn, job.id, "failed", "test")
    dispatched = await asyncio.gather(*(services.dispatch_waiting(MEMBER) for _ in range(4)))
    assert sorted(job.id for batch in dispatched for job in batch) == [j.id for j in jobs[3:]]
    async with db.acquire() as conn:
        assert (await member_load(conn, MEMBER)).in_flight == 3
