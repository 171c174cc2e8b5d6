"""The job queue on real Redis: leases, ownership, the delivery cap, NOGROUP recovery."""

from __future__ import annotations

import asyncio
import json

import pytest

from generation.keys import WORKER_GROUP
from generation.queue import JobQueue
from generation.redis_connection import connect_redis
from tests.factories import imagine_request

LEASE_MS = 300


@pytest.fixture
def queue(redis_client, keys) -> JobQueue:
    return JobQueue(redis_client, keys, lease_ms=LEASE_MS, max_deliveries=2)


def fast(queue: JobQueue, model: str = "tiny-random") -> list[tuple[str, str]]:
    return [(queue.keys.jobs(model, "fast"), "fast")]


async def results(queue: JobQueue) -> list[dict]:
    return [fields for _, fields in await queue.redis.xrange(queue.keys.results)]


async def pending(queue: JobQueue) -> int:
    summary = await queue.redis.xpending(queue.keys.jobs("tiny-random", "fast"), WORKER_GROUP)
    return summary["pending"]


async def test_a_job_goes_in_comes_out_and_leaves_nothing_behind(queue):
    request = imagine_request(prompt="an owl")
    await queue.enqueue("job-1", request)
    [job] = await queue.take("worker-a", fast(queue), count=4)
    assert (job.job_id, job.request, job.lane, job.deliveries) == ("job-1", request, "fast", 1)
    assert await queue.complete("worker-a", job, {"status": "succeeded", "result": "{}"})
    assert await results(queue) == [{"job": "job-1", "status": "succeeded", "result": "{}"}]
    assert await pending(queue) == 0
    assert await queue.redis.xlen(job.stream) == 0  # deleted once acknowledged


async def test_a_worker_takes_no_more_than_one_batch(queue):
    for i in range(5):
        await queue.enqueue(f"job-{i}", imagine_request())
    taken = await queue.take("worker-a", fast(queue), count=2)
    assert [job.job_id for job in taken] == ["job-0", "job-1"]
    assert await pending(queue) == 2
    rest = await queue.take("worker-b", fast(queue), count=10)
    assert [job.job_id for job in rest] == ["job-2", "job-3", "job-4"]


async def test_a_lapsed_lease_is_reclaimed_and_the_old_owner_cannot_report(queue):
    await queue.enqueue("job-1", imagine_request())
    [first] = await queue.take("worker-a", fast(queue), count=1)
    assert await queue.take("worker-b", fast(queue), count=1) == []  # still leased
    await asyncio.sleep(LEASE_MS * 1.5 / 1000)
    [second] = await queue.take("worker-b", fast(queue), count=1)
    assert (second.job_id, second.deliveries) == ("job-1", 2)
    assert await queue.renew("worker-a", [first]) == set()  # cannot take it back
    assert not await queue.complete("worker-a", first, {"status": "succeeded"})
    assert await queue.complete("worker-b", second, {"status": "succeeded"})
    assert [r["job"] for r in await results(queue)] == ["job-1"]


async def test_a_lapsed_entry_its_own_worker_still_holds_is_not_taken_again(queue):
    """issue 17.1: a Redis hang past the lease let the worker's own claim take back the
    job it was still reporting, and the GPU ran it twice."""
    await queue.enqueue("job-1", imagine_request())
    [job] = await queue.take("worker-a", fast(queue), count=1)
    await asyncio.sleep(LEASE_MS * 1.5 / 1000)  # no renewal got through: the lease lapsed
    assert await queue.take("worker-a", fast(queue), count=1, holding={job.entry_id}) == []
    assert await queue.complete("worker-a", job, {"status": "succeeded"})  # still its own
    assert [r["job"] for r in await results(queue)] == ["job-1"]


async def test_renewing_keeps_a_job_from_being_reclaimed(queue):
    await queue.enqueue("job-1", imagine_request())
    [job] = await queue.take("worker-a", fast(queue), count=1)
    for _ in range(6):
        await asyncio.sleep(LEASE_MS / 3000)
        assert await queue.renew("worker-a", [job]) == {job.entry_id}
    assert await queue.take("worker-b", fast(queue), count=1) == []
    details = await queue.redis.xpending_range(job.stream, WORKER_GROUP, "-", "+", 10)
    assert details[0]["times_delivered"] == 1  # renewal is not a delivery


async def test_released_jobs_can_be_taken_at_once(queue):
    await queue.enqueue("job-1", imagine_request())
    taken = await queue.take("worker-a", fast(queue), count=1)
    assert await queue.release("worker-a", taken) == 1
    [job] = await queue.take("worker-b", fast(queue), count=1)
    assert job.job_id == "job-1"


async def test_a_job_delivered_past_the_cap_is_dead_lettered_with_its_reason(queue):
    await queue.enqueue("job-1", imagine_request())
    for worker in ("worker-a", "worker-b"):
        [job] = await queue.take(worker, fast(queue), count=1)
        await queue.fail_attempt(job, "ValueError: boom")
        await asyncio.sleep(LEASE_MS * 1.5 / 1000)
    assert await queue.take("worker-c", fast(queue), count=1) == []
    [dead] = [fields for _, fields in await queue.redis.xrange(queue.keys.dead)]
    assert dead["job"] == "job-1" and dead["deliveries"] == "3"
    assert dead["reason"] == ("delivered 3 times without finishing "
                              "(last error: ValueError: boom)")
    assert json.loads(dead["request"])["prompt"] == "a red fox in snow"
    assert await results(queue) == [{"job": "job-1", "status": "dead", "error": dead["reason"]}]
    assert await pending(queue) == 0


async def test_an_entry_that_is_not_a_valid_job_is_dead_lettered_not_run(queue):
    stream = queue.keys.jobs("tiny-random", "fast")
    await queue.ensure_group(stream)
    bad = json.loads(imagine_request().to_json()) | {"steps": 0}
    await queue.redis.xadd(stream, {"job": "job-9", "request": json.dumps(bad)})
    await queue.enqueue("job-10", imagine_request())
    taken = await queue.take("worker-a", fast(queue), count=4)
    assert [job.job_id for job in taken] == ["job-10"]
    [dead] = [fields for _, fields in await queue.redis.xrange(queue.keys.dead)]
    assert dead["reason"] == "not a valid job: steps is 0: allowed 1 to 150"


async def test_a_lost_group_is_recreated_and_new_work_flows(queue):
    await queue.enqueue("job-1", imagine_request())
    await queue.redis.delete(queue.keys.jobs("tiny-random", "fast"))  # as after a flush
    assert await queue.take("worker-a", fast(queue), count=1) == []  # NOGROUP, recovered
    await queue.enqueue("job-2", imagine_request())
    [job] = await queue.take("worker-a", fast(queue), count=1)
    assert job.job_id == "job-2"


async def test_completion_after_the_group_is_lost_reports_nothing(queue):
    await queue.enqueue("job-1", imagine_request())
    [job] = await queue.take("worker-a", fast(queue), count=1)
    await queue.redis.delete(job.stream)
    assert not await queue.complete("worker-a", job, {"status": "succeeded"})
    assert await results(queue) == []


async def test_waiting_for_work_blocks_then_wakes_on_a_new_job(queue):
    async def enqueue_later():
        await asyncio.sleep(0.2)
        await queue.enqueue("job-late", imagine_request())

    late = asyncio.create_task(enqueue_later())
    taken = await queue.take("worker-a", fast(queue), count=1, block_ms=3000)
    await late
    assert [job.job_id for job in taken] == ["job-late"]


async def test_cancel_flags_are_seen_per_job(queue):
    await queue.cancel("job-2")
    assert await queue.cancelled(["job-1", "job-2"]) == {"job-2"}
    assert await queue.cancelled([]) == set()


async def test_progress_is_published_on_the_jobs_channel(queue):
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(queue.keys.progress("job-1"))
        await queue.publish_progress("job-1", {"step": 2, "total": 4, "preview": None})
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
    assert json.loads(message["data"]) == {"step": 2, "total": 4, "preview": None}


async def test_bad_settings_are_refused(redis_client, keys):
    with pytest.raises(ValueError, match="lease_ms is 5: at least 100"):
        JobQueue(redis_client, keys, lease_ms=5)
    queue = JobQueue(redis_client, keys)
    with pytest.raises(ValueError, match="lane is 'slow': allowed: turbo, fast, relax"):
        await queue.enqueue("job-1", imagine_request(), lane="slow")


async def test_entries_of_bad_bytes_or_deep_nesting_are_dead_lettered_not_stuck(queue, redis_url):
    from redis.asyncio import from_url

    stream = queue.keys.jobs("tiny-random", "fast")
    await queue.ensure_group(stream)
    raw = from_url(redis_url)  # bytes in, as any client could write them
    await raw.xadd(stream, {"job": "bad-bytes", "request": b"\xff\xfe{"})
    await raw.xadd(stream, {"job": "deep", "request": "[" * 100_000})
    await raw.aclose()
    await queue.enqueue("good", imagine_request())
    taken = await queue.take("worker-a", fast(queue), count=4)
    assert [job.job_id for job in taken] == ["good"]
    dead = {f["job"]: f["reason"] for _, f in await queue.redis.xrange(queue.keys.dead)}
    assert set(dead) == {"bad-bytes", "deep"}
    assert dead["bad-bytes"].startswith("not a valid job: json is")


async def test_renew_and_release_after_the_group_is_lost_report_nothing_owned(queue):
    await queue.enqueue("job-1", imagine_request())
    taken = await queue.take("worker-a", fast(queue), count=1)
    await queue.redis.delete(taken[0].stream)  # a flush
    assert await queue.renew("worker-a", taken) == set()
    assert await queue.release("worker-a", taken) == 0


async def test_lapsed_entries_behind_many_live_ones_are_still_reclaimed(queue):
    for i in range(45):
        await queue.enqueue(f"live-{i}", imagine_request())
    live = await queue.take("worker-live", fast(queue), count=45)
    for i in range(5):
        await queue.enqueue(f"lapsed-{i}", imagine_request())
    lapsed = await queue.take("worker-dead", fast(queue), count=5)
    for _ in range(5):  # the live ones stay leased while the dead worker's lapse
        await asyncio.sleep(LEASE_MS / 3000)
        await queue.renew("worker-live", live)
    # Redis scans 10×count pending entries a call (here 40 live ones first); the cursor
    # carries the next call on past them.
    reclaimed = []
    for _ in range(3):
        reclaimed += await queue.take("worker-new", fast(queue), count=4)
    assert {job.job_id for job in reclaimed} == {job.job_id for job in lapsed}


# -- one entry per job id (issue 17: a retried enqueue, a re-enqueue of a finished job) ----

async def test_an_enqueue_retried_after_a_redis_hang_adds_one_entry(own_redis, keys):
    """Redis hangs (SIGSTOP) under an enqueue: the client times out and retries, and Redis,
    once resumed, runs the first try too. The job still has one entry."""
    client = connect_redis(own_redis.url + "?socket_timeout=0.5")
    queue = JobQueue(client, keys)
    try:
        await queue.enqueue("job-0", imagine_request())  # the group and script are in place
        own_redis.hang()
        enqueue = asyncio.create_task(queue.enqueue("job-1", imagine_request()))
        await asyncio.sleep(2)  # the first try timed out; retries are waiting too
        own_redis.resume()
        await enqueue
        entries = await client.xrange(keys.jobs("tiny-random", "fast"))
    finally:
        await client.aclose()
    assert sorted(fields["job"] for _, fields in entries) == ["job-0", "job-1"]


async def test_a_finished_job_is_never_queued_again(queue):
    await queue.enqueue("job-1", imagine_request())
    [job] = await queue.take("worker-a", fast(queue), count=1)
    assert await queue.complete("worker-a", job, {"status": "succeeded", "result": "{}"})
    assert await queue.is_done("job-1", imagine_request())
    assert not await queue.enqueue_if_lost("job-1", imagine_request())  # the reconciler's try
    assert await queue.enqueue("job-1", imagine_request()) == ""
    assert await queue.redis.xlen(queue.keys.jobs("tiny-random", "fast")) == 0


async def test_a_job_with_an_entry_is_not_queued_twice_and_a_lost_one_is(queue):
    first = await queue.enqueue("job-1", imagine_request())
    assert await queue.enqueue("job-1", imagine_request()) == first
    assert not await queue.enqueue_if_lost("job-1", imagine_request())
    await queue.redis.xdel(queue.keys.jobs("tiny-random", "fast"), first)  # Redis lost it
    assert await queue.enqueue_if_lost("job-1", imagine_request())


async def test_an_extra_entry_of_a_done_job_is_dropped_not_run(queue):
    """A duplicate that got in anyway (written before this check, or by hand) never reaches
    the GPU: the worker sees the done marker and drops it."""
    stream = queue.keys.jobs("tiny-random", "fast")
    await queue.enqueue("job-1", imagine_request())
    await queue.redis.xadd(stream, {"job": "job-1", "request": imagine_request().to_json()})
    [job] = await queue.take("worker-a", fast(queue), count=1)
    assert await queue.complete("worker-a", job, {"status": "succeeded", "result": "{}"})
    assert await queue.take("worker-a", fast(queue), count=4) == []
    assert await queue.redis.xlen(stream) == 0 and await pending(queue) == 0
    assert len(await results(queue)) == 1


async def test_a_job_id_reused_for_another_request_is_a_new_job(queue):
    """A database made anew under an old Redis numbers its jobs from 1 again: the done
    marker (a hash of the request) tells the old job 1 from the new one."""
    await queue.enqueue("1", imagine_request(prompt="the old job"))
    [job] = await queue.take("worker-a", fast(queue), count=1)
    assert await queue.complete("worker-a", job, {"status": "succeeded", "result": "{}"})
    assert await queue.enqueue("1", imagine_request(prompt="the old job")) == ""
    assert await queue.enqueue("1", imagine_request(prompt="a new job")) != ""
    [job] = await queue.take("worker-a", fast(queue), count=1)
    assert job.request.prompt == "a new job"
