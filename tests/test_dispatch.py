"""The dispatcher on real PostgreSQL and Redis: jobs wait in PostgreSQL and reach their
stream a few ahead of the workers, in fair-share order, however many bots dispatch."""

from __future__ import annotations

import asyncio
import itertools

from bot.limits import Limits
from bot.services import BotServices
from db.jobs import finish_job
from generation.blobs import LocalBlobStore
from generation.queue import JobQueue
from tests.factories import imagine_request

FLOODER, LIGHT, OTHER = 501, 502, 503
interaction_ids = itertools.count(1)


def services_with(db, redis_client, keys, registry, tmp_path, **options) -> BotServices:
    limits = Limits(max_running=100, max_queued=100, per_minute=1000)
    return BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                       blobs=LocalBlobStore(tmp_path / "blobs"), limits=limits, **options)


async def start(services: BotServices, member: int, steps: int = 4, guild: int = 1, **kw):
    request = imagine_request(user_id=member, guild_id=guild, steps=steps)
    return (await services.start_job(request, next(interaction_ids), **kw))[0]


async def take(services: BotServices, count: int, lane: str = "fast") -> list[int]:
    """What a worker takes from the stream, in order (job ids)."""
    stream = services.queue.keys.jobs("tiny-random", lane)
    taken = await services.queue.take("worker-1", [(stream, lane)], count)
    return [int(job.job_id) for job in taken]


async def test_a_light_members_job_overtakes_a_flood_that_came_first(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=2)
    flood = [await start(services, FLOODER, steps=150) for _ in range(8)]
    assert [job.dispatched_at is not None for job in flood] == [True] * 2 + [False] * 6
    light = await start(services, LIGHT, steps=30)
    assert light.dispatched_at is None  # the stream holds 2 ahead already
    assert await take(services, 2) == [flood[0].id, flood[1].id]
    await services.dispatch_waiting()
    # At most one flood job before it (both flows start their turns afresh), not six.
    assert await take(services, 2) == [flood[2].id, light.id]


async def test_fifo_keeps_the_old_order(db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=2,
                             dispatch_policy="fifo")
    flood = [await start(services, FLOODER, steps=150) for _ in range(4)]
    await start(services, LIGHT, steps=30)
    await take(services, 2)
    await services.dispatch_waiting()
    assert await take(services, 2) == [flood[2].id, flood[3].id]


async def test_the_streams_hold_ahead_jobs_per_serving_worker(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=2)
    await services.queue.announce("worker-1", ["tiny-random"])
    await services.queue.announce("worker-2", ["tiny-random"])
    jobs = [await start(services, FLOODER) for _ in range(6)]
    assert sum(job.dispatched_at is not None for job in jobs) == 4
    assert await services.queue.undelivered("tiny-random", "fast") == 4


async def test_bots_dispatching_at_once_never_overfill_a_stream(
        db, redis_client, keys, registry, tmp_path):
    bots = [services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=3)
            for _ in range(3)]
    for n in range(12):
        await start(bots[n % 3], FLOODER + n % 4)
    await take(bots[0], 3)
    dispatched = await asyncio.gather(*(bot.dispatch_waiting() for bot in bots for _ in range(3)))
    assert sum(len(batch) for batch in dispatched) == 3
    assert await bots[0].queue.undelivered("tiny-random", "fast") == 3


async def test_the_member_cap_holds_and_a_finished_job_frees_a_slot(
        db, redis_client, keys, registry, tmp_path):
    services = BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                           blobs=LocalBlobStore(tmp_path / "blobs"),
                           limits=Limits(max_running=2, per_minute=100), dispatch_ahead=10)
    jobs = [await start(services, FLOODER) for _ in range(4)]
    assert [job.dispatched_at is not None for job in jobs] == [True, True, False, False]
    async with db.acquire() as conn:
        await finish_job(conn, jobs[0].id, "failed", "test")
    assert [job.id for job in await services.dispatch_waiting(FLOODER)] == [jobs[2].id]


async def test_guilds_share_before_members_do(db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=1)
    for member in (601, 602, 603):  # a busy guild of three
        for _ in range(3):
            await start(services, member, guild=10)
    alone = [await start(services, 700, guild=20) for _ in range(3)]
    order = []
    for _ in range(6):
        order += await take(services, 1)
        await services.dispatch_waiting()
    assert sum(job_id in {job.id for job in alone} for job_id in order) == 3  # every other


async def test_the_fair_share_state_survives_a_restart(db, redis_client, keys, registry,
                                                       tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=1)
    for member in (FLOODER, OTHER):
        for _ in range(3):
            await start(services, member)
    order = await take(services, 1)
    for _ in range(3):
        services = services_with(db, redis_client, keys, registry, tmp_path, dispatch_ahead=1)
        await services.dispatch_waiting()
        order += await take(services, 1)
    async with db.acquire() as conn:
        members = [await conn.fetchval("SELECT member_id FROM jobs WHERE id = $1", job_id)
                   for job_id in order]
    # Turns alternate once both wait (the first job went while the flooder was alone); a
    # bot that forgot the turns would give the flooder all three of its jobs first.
    assert members == [FLOODER, FLOODER, OTHER, FLOODER]
