"""The sampling pool in-process: real Redis, the tiny engine, a real blob folder."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import time

import pytest
from PIL import Image

from generation.blobs import LocalBlobStore
from generation.contract import GenerationResult, JobKind
from generation.keys import WORKER_GROUP
from generation.pool import PoolSettings, SamplingPool
from generation.queue import JobQueue
from tests.factories import imagine_request

LEASE_MS = 400


@pytest.fixture
def queue(redis_client, keys) -> JobQueue:
    return JobQueue(redis_client, keys, lease_ms=LEASE_MS, max_deliveries=2)


@pytest.fixture
def blobs(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


@contextlib.asynccontextmanager
async def running_pool(tiny_engine, queue, blobs, **settings):
    pool = SamplingPool({"tiny-random": tiny_engine}, queue, blobs, "pool-a",
                        PoolSettings(block_ms=100, preview_interval_s=0, **settings))
    stop = asyncio.Event()
    task = asyncio.create_task(pool.run(stop))
    try:
        yield pool
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def wait_for_results(queue: JobQueue, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entries = await queue.redis.xrange(queue.keys.results)
        if len(entries) >= count:
            return [fields for _, fields in entries]
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(entries)} of {count} results after {timeout} s")


async def test_jobs_flow_through_and_their_images_are_stored(tiny_engine, queue, blobs):
    for i in range(3):
        await queue.enqueue(f"job-{i}", imagine_request(seed=100 * i))
    async with running_pool(tiny_engine, queue, blobs):
        outcomes = await wait_for_results(queue, 3)
    assert {o["job"] for o in outcomes} == {"job-0", "job-1", "job-2"}
    for outcome in outcomes:
        assert outcome["status"] == "succeeded"
        result = GenerationResult.from_json(outcome["result"])
        assert result.batch_size == 3  # one pipeline call for all three
        for image in result.images:
            data = blobs.get(image.key)
            assert hashlib.sha256(data).hexdigest() == image.sha256
            assert image.key == f"images/{result.job_id}/{image.slot}.png"
        assert blobs.exists(f"images/{result.job_id}/grid.webp")
    summary = await queue.redis.xpending(queue.keys.jobs("tiny-random", "fast"), WORKER_GROUP)
    assert summary["pending"] == 0


async def test_pool_images_equal_the_engine_run_directly(tiny_engine, queue, blobs):
    request = imagine_request(seed=4242)
    await queue.enqueue("job-1", request)
    async with running_pool(tiny_engine, queue, blobs):
        [outcome] = await wait_for_results(queue, 1)
    direct = tiny_engine.run(request)
    result = GenerationResult.from_json(outcome["result"])
    for image, expected in zip(result.images, direct, strict=True):
        stored = Image.open(io.BytesIO(blobs.get(image.key)))
        assert stored.tobytes() == expected.tobytes()


async def test_a_poison_job_reaches_the_cap_alone_and_nothing_spins(
        tiny_engine, queue, blobs, caplog):
    parent = tiny_engine.run(imagine_request())[0]
    save_png(blobs, "images/p/1.png", parent)
    save_png(blobs, "images/p/wrong.png", parent.resize((128, 128)))  # not the size asked
    variation = dict(kind=JobKind.VARIATION, strength=0.5)
    await queue.enqueue("good-1", imagine_request(parent_image="images/p/1.png", **variation))
    await queue.enqueue("poison", imagine_request(parent_image="images/p/wrong.png", **variation))
    await queue.enqueue("good-2", imagine_request(parent_image="images/p/1.png", **variation))
    caplog.set_level(logging.WARNING, logger="generation")
    async with running_pool(tiny_engine, queue, blobs):
        outcomes = await wait_for_results(queue, 3)
    by_job = {o["job"]: o for o in outcomes}
    assert by_job["good-1"]["status"] == by_job["good-2"]["status"] == "succeeded"
    assert by_job["poison"]["status"] == "dead"
    assert "image size is 128x128: the request says 64x64" in by_job["poison"]["error"]
    [dead] = [fields for _, fields in await queue.redis.xrange(queue.keys.dead)]
    assert dead["job"] == "poison" and dead["deliveries"] == "3"
    attempts = [r for r in caplog.records if "job poison failed on delivery" in r.message]
    assert len(attempts) == 2  # one failure per delivery: no hot loop
    assert attempts[1].created - attempts[0].created >= LEASE_MS / 1000 * 0.9


def save_png(blobs, key: str, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    blobs.put(key, buffer.getvalue(), "image/png")


async def test_cancel_stops_a_running_job_between_steps(tiny_engine, queue, blobs):
    await queue.enqueue("job-1", imagine_request(steps=150))
    steps = []
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(queue.keys.progress("job-1"))
        async with running_pool(tiny_engine, queue, blobs):
            while not steps:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message:
                    steps.append(json.loads(message["data"]))
            await queue.cancel("job-1")
            [outcome] = await wait_for_results(queue, 1)
    assert outcome == {"job": "job-1", "status": "cancelled", "error": "cancelled while running"}
    assert steps[0]["total"] == 150 and steps[0]["preview"]  # a preview came with it


async def test_a_cancelled_job_is_not_started(tiny_engine, queue, blobs):
    await queue.enqueue("job-1", imagine_request())
    await queue.cancel("job-1")
    async with running_pool(tiny_engine, queue, blobs):
        [outcome] = await wait_for_results(queue, 1)
    assert outcome["status"] == "cancelled" and "before it started" in outcome["error"]


async def test_a_fast_job_goes_before_a_flood_of_relax_jobs(tiny_engine, queue, blobs):
    for i in range(4):
        await queue.enqueue(f"relax-{i}", imagine_request(seed=i), lane="relax")
    await queue.enqueue("fast", imagine_request(seed=99), lane="fast")
    async with running_pool(tiny_engine, queue, blobs, max_batch=1):
        order = [o["job"] for o in await wait_for_results(queue, 5)]
    assert order[0] == "fast"


async def test_a_relax_job_past_its_age_limit_is_not_starved(tiny_engine, queue, blobs):
    await queue.enqueue("relax", imagine_request(seed=1), lane="relax")
    for i in range(8):
        await queue.enqueue(f"fast-{i}", imagine_request(seed=10 + i))
    async with running_pool(tiny_engine, queue, blobs, max_batch=1, relax_max_wait_ms=600):
        order = [o["job"] for o in await wait_for_results(queue, 9)]
    assert order.index("relax") < 8  # served while fast jobs were still waiting


async def test_the_pool_recovers_when_its_streams_vanish(tiny_engine, queue, blobs):
    async with running_pool(tiny_engine, queue, blobs):
        await queue.enqueue("before", imagine_request())
        await wait_for_results(queue, 1)
        # What a Redis flush or restart without persistence does to the queue.
        await queue.redis.delete(queue.keys.jobs("tiny-random", "fast"))
        await asyncio.sleep(0.3)
        await queue.enqueue("after", imagine_request())
        outcomes = await wait_for_results(queue, 2)
    assert [o["job"] for o in outcomes] == ["before", "after"]


class FirstPutFails(LocalBlobStore):
    """A real folder store whose first write fails, as a full disk or S3 outage would."""

    failed = False

    def put(self, key, data, content_type):
        if not self.failed:
            FirstPutFails.failed = True
            raise OSError("no space left on device")
        super().put(key, data, content_type)


async def test_a_failed_upload_fails_that_job_once_and_the_pool_carries_on(
        tiny_engine, queue, tmp_path):
    blobs = FirstPutFails(tmp_path / "flaky")
    for i in range(2):
        await queue.enqueue(f"job-{i}", imagine_request(seed=i))
    async with running_pool(tiny_engine, queue, blobs, max_batch=1):
        outcomes = await wait_for_results(queue, 2)
        await queue.enqueue("job-later", imagine_request(seed=9))
        outcomes = await wait_for_results(queue, 3)
    assert {o["job"]: o["status"] for o in outcomes} == {
        "job-0": "succeeded", "job-1": "succeeded", "job-later": "succeeded"}


async def test_a_running_pool_says_which_models_it_serves(tiny_engine, queue, blobs):
    assert not await queue.is_served("tiny-random")
    async with running_pool(tiny_engine, queue, blobs):
        await asyncio.sleep(0.1)
        assert await queue.is_served("tiny-random") and not await queue.is_served("sd15")
