"""`dreamloop bench pool`: jobs through Redis + the sampling pool against direct calls.

Both run in one process on one engine: first the jobs as plain engine calls, one
after another; then the same jobs enqueued at once and served by a pool. The
queue's own latency (enqueue → sampling starts) is measured apart, one job at a
time on an idle pool, so it is not time spent waiting behind other jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from generation.bench import _bench_request, _seconds
from generation.blobs import LocalBlobStore
from generation.engine import Engine
from generation.keys import Keys
from generation.pool import PoolSettings, SamplingPool
from generation.queue import JobQueue
from generation.redis_connection import connect_redis, delete_keys


async def bench_pool(engine: Engine, redis_url: str, jobs: int, max_batch: int,
                     report: Callable[[str], None]) -> dict:
    requests = [dataclasses.replace(_bench_request(engine.spec), seed=1000 * i)
                for i in range(jobs)]
    keys = Keys(f"dreamloop-bench:{os.getpid()}:")
    client = connect_redis(redis_url)
    queue = JobQueue(client, keys)
    with tempfile.TemporaryDirectory() as folder:
        pool = SamplingPool({engine.spec.name: engine}, queue, LocalBlobStore(Path(folder)),
                            "bench", PoolSettings(max_batch=max_batch, block_ms=200))
        try:
            # The baseline runs on the pool's own GPU thread: like for like.
            report("warming up…")
            await pool.on_gpu_thread(lambda: engine.run(requests[0]))
            report(f"{jobs} jobs as direct engine calls…")
            direct_s = await pool.on_gpu_thread(
                lambda: _seconds(lambda: [engine.run(r) for r in requests]))
            report(f"the same {jobs} jobs through the queue and pool…")
            pool_s = await _through_pool(pool, requests)
            report("queue latency, one job at a time…")
            waits = await _queue_latency(pool, requests[:20])
        finally:
            await delete_keys(client, keys.prefix)
            await client.aclose()
    return _figures(engine, jobs, max_batch, direct_s, pool_s, waits)


def _figures(engine, jobs, max_batch, direct_s, pool_s, waits) -> dict:
    return {"model": engine.spec.name, "device": str(engine.device), "jobs": jobs,
            "max_batch": max_batch, "direct_jobs_per_s": round(jobs / direct_s, 3),
            "pool_jobs_per_s": round(jobs / pool_s, 3),
            "pool_vs_direct": round(direct_s / pool_s, 3),
            "queue_overhead_ms_p50": statistics.median(waits),
            "queue_overhead_ms_p95": _percentile(waits, 95)}


async def _through_pool(pool: SamplingPool, requests) -> float:
    stop = asyncio.Event()
    running = asyncio.create_task(pool.run(stop))
    start = time.perf_counter()
    for i, request in enumerate(requests):
        await pool.queue.enqueue(f"bench-{i}", request)
    await _wait_for_results(pool.queue, len(requests))
    elapsed = time.perf_counter() - start
    stop.set()
    await running
    return elapsed


async def _queue_latency(pool: SamplingPool, requests) -> list[int]:
    stop = asyncio.Event()
    running = asyncio.create_task(pool.run(stop))
    await asyncio.sleep(0.5)  # the pool is now blocked waiting for work
    done = await pool.queue.redis.xlen(pool.queue.keys.results)
    for i, request in enumerate(requests):
        await pool.queue.enqueue(f"latency-{i}", request)
        done += 1
        await _wait_for_results(pool.queue, done)
    stop.set()
    await running
    return [s.waited_ms for s in pool.stats if s.job_id.startswith("latency-")]


async def _wait_for_results(queue: JobQueue, count: int) -> None:
    # A blocking read, not a polling loop: polling would steal CPU from the sampling thread.
    seen, last = 0, "0-0"
    while seen < count:
        reply = await queue.redis.xread({queue.keys.results: last}, block=1000)
        for _, entries in reply or []:
            seen += len(entries)
            last = entries[-1][0]


def _percentile(values: list[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]
