"""Jobs in PostgreSQL: idempotent creation, racing completions, queue position, limits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from db.jobs import (
    cancel_job,
    complete_job,
    create_job,
    finish_job,
    get_job,
    mark_running,
    mark_started,
    member_load,
    member_usage,
    queue_position,
    record_progress,
    set_message_ids,
    stale_jobs,
)
from db.model_versions import ensure_model_version
from generation.contract import JobKind
from tests.factories import imagine_request, result_for

MEMBER, GUILD, CHANNEL = 1001, 2001, 3001


@pytest.fixture
async def version_id(db):
    async with db.acquire() as conn:
        return (await ensure_model_version(conn, "tiny-random", "tiny-random", "builtin")).id


def member_request(**changes):
    return imagine_request(user_id=MEMBER, guild_id=GUILD, channel_id=CHANNEL, **changes)


async def new_job(db, version_id, lane="fast", **changes):
    async with db.acquire() as conn:
        job, _ = await create_job(conn, member_request(**changes), model_version_id=version_id,
                                  lane=lane)
    return job


async def test_a_created_job_is_queued_with_its_request(db, version_id):
    request = member_request(prompt="an owl at night")
    async with db.acquire() as conn:
        job, created = await create_job(conn, request, model_version_id=version_id,
                                        interaction_id=555)
        assert created and job.status == "queued" and job.request == request
        assert (job.member_id, job.guild_id, job.channel_id) == (MEMBER, GUILD, CHANNEL)
        assert await get_job(conn, job.id) == job


async def test_a_retry_with_the_same_interaction_id_makes_no_second_job(db, version_id):
    async with db.acquire() as conn:
        first, created = await create_job(conn, member_request(), model_version_id=version_id,
                                          interaction_id=777)
        again, created_again = await create_job(conn, member_request(seed=99),
                                                model_version_id=version_id, interaction_id=777)
        assert created and not created_again
        assert again == first
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1


async def test_concurrent_retries_make_one_job(db, version_id):
    async def attempt():
        async with db.acquire() as conn:
            return await create_job(conn, member_request(), model_version_id=version_id,
                                    interaction_id=888)

    outcomes = await asyncio.gather(*(attempt() for _ in range(10)))
    assert sum(created for _, created in outcomes) == 1
    assert len({job.id for job, _ in outcomes}) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1


async def test_of_two_concurrent_completions_exactly_one_wins(db, version_id):
    job = await new_job(db, version_id)
    result = result_for(job.id, job.request)

    async def deliver():
        async with db.acquire() as conn:
            return await complete_job(conn, result)

    for _ in range(3):  # the losers must also see nothing change on later tries
        outcomes = await asyncio.gather(deliver(), deliver())
        if _ == 0:
            assert sorted(outcomes) == [False, True]
        else:
            assert outcomes == [False, False]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM images WHERE job_id = $1", job.id) == 4
        done = await get_job(conn, job.id)
    assert done.status == "succeeded" and done.gpu_ms == 1200 and done.finished_at is not None


async def test_completion_records_each_image_with_its_seed_and_version(db, version_id):
    job = await new_job(db, version_id, seed=40)
    async with db.acquire() as conn:
        await complete_job(conn, result_for(job.id, job.request))
        rows = await conn.fetch("SELECT slot, seed, blob_key, model_version_id FROM images "
                                "WHERE job_id = $1 ORDER BY slot", job.id)
    assert [(r["slot"], r["seed"]) for r in rows] == [(1, 40), (2, 41), (3, 42), (4, 43)]
    assert rows[1]["blob_key"] == f"images/{job.id}/2.png"
    assert {r["model_version_id"] for r in rows} == {version_id}


async def test_a_cancelled_job_cannot_be_completed_or_restarted(db, version_id):
    job = await new_job(db, version_id)
    async with db.acquire() as conn:
        assert not await cancel_job(conn, job.id, member_id=MEMBER + 1)  # not theirs
        assert await cancel_job(conn, job.id, member_id=MEMBER)
        assert not await complete_job(conn, result_for(job.id, job.request))
        assert not await mark_running(conn, job.id)
        assert not await cancel_job(conn, job.id, member_id=MEMBER)
        assert await conn.fetchval("SELECT count(*) FROM images") == 0


async def test_running_counts_attempts_and_the_first_wait(db, version_id):
    job = await new_job(db, version_id)
    async with db.acquire() as conn:
        assert await mark_running(conn, job.id)
        first = await get_job(conn, job.id)
        assert await mark_running(conn, job.id)  # redelivered to another worker
        again = await get_job(conn, job.id)
    assert (first.status, first.attempts, again.attempts) == ("running", 1, 2)
    assert again.started_at == first.started_at and again.queue_ms == first.queue_ms >= 0


async def test_failures_end_the_job_once(db, version_id):
    job = await new_job(db, version_id)
    async with db.acquire() as conn:
        assert await finish_job(conn, job.id, "dead", "delivered 5 times")
        assert not await finish_job(conn, job.id, "failed", "again")
        ended = await get_job(conn, job.id)
        with pytest.raises(ValueError, match="status is 'succeeded': allowed: failed, dead"):
            await finish_job(conn, job.id, "succeeded", "")
    assert (ended.status, ended.error) == ("dead", "delivered 5 times")


async def test_queue_position_counts_the_same_stream_only(db, version_id):
    fast = [await new_job(db, version_id) for _ in range(3)]
    relax = await new_job(db, version_id, lane="relax")
    other_model = await new_job(db, version_id, model="sdxl", width=1024, height=1024)
    async with db.acquire() as conn:
        assert [await queue_position(conn, j.id) for j in fast] == [1, 2, 3]
        assert await queue_position(conn, relax.id) == 1
        assert await queue_position(conn, other_model.id) == 1
        await mark_running(conn, fast[0].id)
        assert await queue_position(conn, fast[0].id) is None
        assert [await queue_position(conn, j.id) for j in fast[1:]] == [1, 2]


async def test_member_load_and_usage(db, version_id):
    jobs = [await new_job(db, version_id) for _ in range(4)]
    async with db.acquire() as conn:
        await mark_running(conn, jobs[0].id)
        await mark_running(conn, jobs[1].id)
        await complete_job(conn, result_for(jobs[1].id, jobs[1].request, gpu_ms=2500))
        load = await member_load(conn, MEMBER)
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        usage = await member_usage(conn, MEMBER, since=hour_ago)
        later = await member_usage(conn, MEMBER, since=datetime.now(UTC) + timedelta(hours=1))
    assert (load.running, load.queued) == (1, 2)
    assert (usage.jobs, usage.gpu_ms) == (4, 2500)
    assert (later.jobs, later.gpu_ms) == (0, 0)


async def test_stale_jobs_are_dispatched_active_ones_without_progress(db, version_id):
    quiet, lively, done, waiting = [await new_job(db, version_id) for _ in range(4)]
    async with db.acquire() as conn:
        await conn.execute("""UPDATE jobs SET created_at = now() - interval '10 minutes',
                                  dispatched_at = now() - interval '10 minutes'""")
        await conn.execute("UPDATE jobs SET dispatched_at = NULL WHERE id = $1", waiting.id)
        await mark_running(conn, lively.id)
        await record_progress(conn, lively.id)
        await complete_job(conn, result_for(done.id, done.request))
        stale = await stale_jobs(conn, datetime.now(UTC) - timedelta(minutes=5))
    assert [job.id for job in stale] == [quiet.id]  # a waiting job has no entry to lose


async def test_a_job_dispatched_after_a_long_wait_is_not_stale(db, version_id):
    await new_job(db, version_id)
    async with db.acquire() as conn:
        await conn.execute("UPDATE jobs SET created_at = now() - interval '1 hour'")
        assert await stale_jobs(conn, datetime.now(UTC) - timedelta(minutes=5)) == []


async def test_the_first_progress_event_marks_a_job_started_once(db, version_id):
    job = await new_job(db, version_id)
    async with db.acquire() as conn:
        assert await mark_started(conn, job.id)
        assert not await mark_started(conn, job.id)  # another bot saw it too
        started = await get_job(conn, job.id)
    assert (started.status, started.attempts) == ("running", 0)
    assert started.queue_ms is not None


async def test_message_ids_are_remembered(db, version_id):
    job = await new_job(db, version_id)
    async with db.acquire() as conn:
        await set_message_ids(conn, job.id, status_message_id=11)
        await set_message_ids(conn, job.id, result_message_id=22)
        row = await conn.fetchrow("SELECT status_message_id, result_message_id FROM jobs")
    assert tuple(row) == (11, 22)


async def test_a_variation_points_at_its_parent_image(db, version_id):
    parent_job = await new_job(db, version_id)
    async with db.acquire() as conn:
        await complete_job(conn, result_for(parent_job.id, parent_job.request))
        image_id = await conn.fetchval("SELECT id FROM images WHERE slot = 2")
        request = member_request(kind=JobKind.VARIATION, strength=0.35,
                                 parent_image=f"images/{parent_job.id}/2.png")
        job, _ = await create_job(conn, request, model_version_id=version_id,
                                  parent_image_id=image_id)
        assert await conn.fetchval("SELECT parent_image_id FROM jobs WHERE id = $1",
                                   job.id) == image_id


async def test_an_unknown_lane_is_refused(db, version_id):
    async with db.acquire() as conn:
        with pytest.raises(ValueError, match="lane is 'slow': allowed: turbo, fast, relax"):
            await create_job(conn, member_request(), model_version_id=version_id, lane="slow")
