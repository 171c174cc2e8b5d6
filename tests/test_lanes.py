"""Lanes on real PostgreSQL and Redis: the lane a job asks for reaches its stream, a lane
no worker serves falls back, turbo spends fast time twice and relax none, and workers take
turbo first."""

from __future__ import annotations

import itertools

from bot.limits import Limits
from bot.services import BotServices
from db.jobs import complete_job
from generation.blobs import LocalBlobStore
from generation.keys import LANES
from generation.queue import JobQueue
from tests.factories import imagine_request, result_for

MEMBER = 808
interaction_ids = itertools.count(1)


def services_with(db, redis_client, keys, registry, tmp_path, **limits) -> BotServices:
    return BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                       blobs=LocalBlobStore(tmp_path / "blobs"), dispatch_ahead=10,
                       limits=Limits(per_minute=100, max_running=10, **limits))


async def start(services: BotServices, lane: str | None = None):
    request = imagine_request(user_id=MEMBER)
    return (await services.start_job(request, next(interaction_ids), lane=lane))[0]


async def test_each_lane_reaches_its_own_stream(db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    for lane in LANES:
        job = await start(services, lane)
        assert job.lane == lane and job.dispatched_at is not None
        assert await services.queue.undelivered("tiny-random", lane) == 1


async def test_a_lane_no_worker_serves_falls_back_to_the_nearest_served(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    assert await services.lane_for("tiny-random", "turbo") == ("turbo", None)  # none at all
    await services.queue.announce("worker-1", ["tiny-random"], ("fast", "relax"))
    lane, note = await services.lane_for("tiny-random", "turbo")
    assert lane == "fast"
    assert note == ("No worker serves the turbo lane of tiny-random now, so this job runs in "
                    "the fast lane.")
    assert await services.lane_for("tiny-random", "relax") == ("relax", None)
    await services.queue.announce("worker-2", ["tiny-random"], ("relax",))
    assert await services.queue.serving_count("tiny-random", "relax") == 2


async def finish(services: BotServices, job, gpu_ms: int) -> None:
    async with services.db.acquire() as conn:
        await complete_job(conn, result_for(job.id, job.request, gpu_ms=gpu_ms))


async def test_turbo_spends_the_fast_time_twice_and_relax_not_at_all(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path,
                             fast_gpu_seconds=25, job_estimate_s=10)
    await finish(services, await start(services, "relax"), gpu_ms=60_000)
    await finish(services, await start(services, "turbo"), gpu_ms=10_000)  # 20 s of 25
    assert (await start(services)).lane == "fast"  # 20 + 10 s estimated for this one
    assert (await start(services, "turbo")).lane == "relax"  # 30 ≥ 25: spent


async def test_workers_take_turbo_before_fast_before_relax(db, redis_client, keys, registry,
                                                           tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    jobs = {lane: await start(services, lane) for lane in ("relax", "fast", "turbo")}
    streams = [(services.queue.keys.jobs("tiny-random", lane), lane) for lane in LANES]
    taken = await services.queue.take("worker-1", streams, 3)
    assert [int(job.job_id) for job in taken] == [jobs[lane].id for lane in LANES]
