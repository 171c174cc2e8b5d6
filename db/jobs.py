"""Jobs: created idempotently, moved through their states by conditional updates.

Every state change is `UPDATE … WHERE status IN (…) RETURNING`, so of two
processes racing to move one job (two deliverers, a worker and a cancel),
exactly one sees a row come back; the other learns it lost and does nothing.
Functions take a connection, so callers compose them into one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from generation.contract import GenerationRequest, GenerationResult
from generation.keys import LANES

# Time from creation to the first start, kept once set (a retried job keeps its first wait).
_QUEUE_MS = "coalesce(queue_ms, (extract(epoch FROM now() - created_at) * 1000)::int)"


@dataclass(frozen=True)
class Job:
    id: int
    interaction_id: int | None
    kind: str
    status: str
    model: str
    model_version_id: int
    lane: str
    request: GenerationRequest
    member_id: int | None
    guild_id: int | None
    channel_id: int | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_ms: int | None
    gpu_ms: int | None
    error: str | None
    status_message_id: int | None
    result_message_id: int | None
    dispatched_at: datetime | None  # handed to the workers' stream; None while it waits
    edit: dict | None = None  # an edit's lineage as the member chose it (migration 0011)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        fields = {name: row[name] for name in cls.__dataclass_fields__ if name != "request"}
        return cls(request=GenerationRequest.from_dict(row["request"]), **fields)


_COLUMNS = ", ".join(name for name in Job.__dataclass_fields__)


async def create_job(conn: asyncpg.Connection, request: GenerationRequest, *,
                     model_version_id: int, lane: str = "fast",
                     interaction_id: int | None = None,
                     parent_image_id: int | None = None,
                     dispatch: bool = True, edit: dict | None = None) -> tuple[Job, bool]:
    """Insert a queued job, dispatched to the workers or (dispatch False) waiting for one
    of its member's jobs to finish; returns (job, created). A retry with the same
    interaction id returns the job the first attempt made, with created False."""
    if lane not in LANES:
        raise ValueError(f"lane is {lane!r}: allowed: {', '.join(LANES)}")
    # One statement (so one round trip, atomic without BEGIN/COMMIT): the member and
    # guild rows the job refers to are created on first sight, then the job.
    row = await conn.fetchrow(
        f"""WITH member AS (INSERT INTO members (id) SELECT $7 WHERE $7::bigint IS NOT NULL
                            ON CONFLICT DO NOTHING),
                 guild AS (INSERT INTO guilds (id) SELECT $8 WHERE $8::bigint IS NOT NULL
                           ON CONFLICT DO NOTHING)
            INSERT INTO jobs (interaction_id, kind, model, model_version_id, lane, request,
                              member_id, guild_id, channel_id, parent_image_id,
                              dispatched_at, edit)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN now() END,
                    $12)
            ON CONFLICT (interaction_id) DO NOTHING
            RETURNING {_COLUMNS}""",
        interaction_id, str(request.kind), request.model, model_version_id, lane,
        request.to_dict(), request.user_id, request.guild_id, request.channel_id,
        parent_image_id, dispatch, edit)
    if row is not None:
        return Job.from_row(row), True
    # ON CONFLICT waited for the other insert to commit, so this read sees its job.
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE interaction_id = $1",
                              interaction_id)
    return Job.from_row(row), False


async def get_job(conn: asyncpg.Connection, job_id: int) -> Job | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE id = $1", job_id)
    return None if row is None else Job.from_row(row)


async def mark_running(conn: asyncpg.Connection, job_id: int) -> bool:
    """A worker started (or restarted) the job; False if it is no longer active."""
    row = await conn.fetchrow(
        f"""UPDATE jobs SET status = 'running', attempts = attempts + 1,
                   started_at = coalesce(started_at, now()), progress_at = now(),
                   queue_ms = {_QUEUE_MS}
           WHERE id = $1 AND status IN ('queued', 'running')
           RETURNING id""", job_id)
    return row is not None


async def mark_started(conn: asyncpg.Connection, job_id: int) -> bool:
    """The bot saw the job's first progress event: a worker is drawing it. Idempotent, so
    every bot process may say it; False if it was not waiting to start."""
    row = await conn.fetchrow(
        f"""UPDATE jobs SET status = 'running', started_at = coalesce(started_at, now()),
                   progress_at = now(), queue_ms = {_QUEUE_MS}
           WHERE id = $1 AND status = 'queued' AND dispatched_at IS NOT NULL
           RETURNING id""", job_id)
    return row is not None


async def record_progress(conn: asyncpg.Connection, job_id: int) -> bool:
    """A sign of life from the worker; the reconciler leaves such jobs alone."""
    row = await conn.fetchrow(
        "UPDATE jobs SET progress_at = now() WHERE id = $1 AND status = 'running' RETURNING id",
        job_id)
    return row is not None


async def complete_job(conn: asyncpg.Connection, result: GenerationResult) -> bool:
    """Record the result's images and mark the job succeeded, all or nothing.

    True for the one caller that completed it; False if it was already finished
    (a second deliverer, or a job cancelled meanwhile): that caller posts nothing.
    """
    images = result.images
    # One statement: the images are inserted only for the row the UPDATE won.
    inserted = await conn.fetch(
        f"""WITH done AS (
                UPDATE jobs SET status = 'succeeded', finished_at = now(), gpu_ms = $2,
                       started_at = coalesce(started_at, now()), error = NULL,
                       queue_ms = {_QUEUE_MS}
                WHERE id = $1 AND status IN ('queued', 'running')
                RETURNING id, model_version_id)
            INSERT INTO images (job_id, slot, seed, blob_key, width, height, sha256,
                                model_version_id, flagged, safety_labels)
            SELECT done.id, image.slot, image.seed, image.key, image.width, image.height,
                   image.sha256, done.model_version_id, image.flagged, image.labels
            FROM done, unnest($3::smallint[], $4::bigint[], $5::text[], $6::int[], $7::int[],
                              $8::text[], $9::boolean[], $10::jsonb[])
                       AS image (slot, seed, key, width, height, sha256, flagged, labels)
            RETURNING id""",
        int(result.job_id), result.gpu_ms, [i.slot for i in images], [i.seed for i in images],
        [i.key for i in images], [i.width for i in images], [i.height for i in images],
        [i.sha256 for i in images], [i.flagged for i in images], [i.labels for i in images])
    return len(inserted) > 0


async def finish_job(conn: asyncpg.Connection, job_id: int, status: str, error: str) -> bool:
    """End an active job as failed, dead (too many deliveries) or cancelled."""
    if status not in ("failed", "dead", "cancelled"):
        raise ValueError(f"status is {status!r}: allowed: failed, dead, cancelled")
    row = await conn.fetchrow(
        """UPDATE jobs SET status = $2, error = $3, finished_at = now()
           WHERE id = $1 AND status IN ('queued', 'running')
           RETURNING id""", job_id, status, error)
    return row is not None


async def fail_delivery(conn: asyncpg.Connection, job_id: int, error: str) -> bool:
    """A succeeded job whose result cannot be posted (its channel is gone, or the bot lost
    access) ends failed; its images stay recorded. False if it was posted or not done."""
    row = await conn.fetchrow(
        """UPDATE jobs SET status = 'failed', error = $2
           WHERE id = $1 AND status = 'succeeded' AND result_message_id IS NULL
           RETURNING id""", job_id, error)
    return row is not None


async def cancel_job(conn: asyncpg.Connection, job_id: int, member_id: int) -> bool:
    """A member cancels their own queued or running job; False if it is not theirs or done."""
    row = await conn.fetchrow(
        """UPDATE jobs SET status = 'cancelled', error = 'cancelled by its member',
                  finished_at = now()
           WHERE id = $1 AND member_id = $2 AND status IN ('queued', 'running')
           RETURNING id""", job_id, member_id)
    return row is not None


async def cancel_guild_jobs(conn: asyncpg.Connection, member_id: int, guild_id: int,
                            error: str) -> list[int]:
    """Cancel a member's queued and running jobs in one server (a ban); their ids."""
    rows = await conn.fetch(
        """UPDATE jobs SET status = 'cancelled', error = $3, finished_at = now()
           WHERE member_id = $1 AND guild_id = $2 AND status IN ('queued', 'running')
           RETURNING id""", member_id, guild_id, error)
    return sorted(row["id"] for row in rows)


async def set_message_ids(conn: asyncpg.Connection, job_id: int, *,
                          status_message_id: int | None = None,
                          result_message_id: int | None = None) -> None:
    """Remember what was posted for the job (each id kept once set)."""
    await conn.execute(
        """UPDATE jobs SET status_message_id = coalesce($2, status_message_id),
                           result_message_id = coalesce($3, result_message_id)
           WHERE id = $1""", job_id, status_message_id, result_message_id)


async def queue_position(conn: asyncpg.Connection, job_id: int) -> int | None:
    """1 for the next job its stream will hand out; None unless it is queued in a stream
    (not yet started, and not waiting for its member's other jobs)."""
    return await conn.fetchval(
        """SELECT count(*) FROM jobs AS ahead, jobs AS job
           WHERE job.id = $1 AND job.status = 'queued' AND job.dispatched_at IS NOT NULL
             AND ahead.status = 'queued' AND ahead.dispatched_at IS NOT NULL
             AND ahead.model = job.model AND ahead.lane = job.lane AND ahead.id <= job.id
           HAVING count(*) > 0""", job_id)


async def typical_gpu_ms(conn: asyncpg.Connection, model: str) -> int | None:
    """The median GPU time of the model's last 100 finished jobs (for estimated starts)."""
    return await conn.fetchval(
        """SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY gpu_ms) FROM (
               SELECT gpu_ms FROM jobs WHERE model = $1 AND status = 'succeeded'
               ORDER BY finished_at DESC LIMIT 100) AS recent""", model)


@dataclass(frozen=True)
class MemberLoad:
    running: int  # started by a worker
    queued: int  # not started yet: in a stream, or waiting for the member's other jobs
    in_flight: int  # dispatched to the workers and not finished: what the concurrent cap counts


async def member_load(conn: asyncpg.Connection, member_id: int) -> MemberLoad:
    """How many of a member's jobs are running, queued and in flight now (for the caps)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE status = 'running') AS running,
                  count(*) FILTER (WHERE status = 'queued') AS queued,
                  count(*) FILTER (WHERE dispatched_at IS NOT NULL) AS in_flight
           FROM jobs WHERE member_id = $1 AND status IN ('queued', 'running')""", member_id)
    return MemberLoad(**row)


@dataclass(frozen=True)
class WaitingJob:
    """A job waiting for the dispatcher, with what its predicted cost is made of."""

    id: int
    member_id: int | None
    guild_id: int | None
    request: GenerationRequest


async def waiting_streams(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """The (model, lane) streams that have jobs waiting for the dispatcher."""
    rows = await conn.fetch(
        """SELECT DISTINCT model, lane FROM jobs
           WHERE status = 'queued' AND dispatched_at IS NULL ORDER BY model, lane""")
    return [(row["model"], row["lane"]) for row in rows]


async def waiting_jobs(conn: asyncpg.Connection, model: str, lane: str,
                       max_in_flight: int) -> list[WaitingJob]:
    """A stream's waiting jobs that their member's concurrent cap lets go now: each
    member's oldest, as many as they have slots free (jobs with no member: all). The cap is
    the job's server's max_running when it set one (/settings server), else max_in_flight."""
    rows = await conn.fetch(
        """WITH flight AS (
               SELECT member_id, count(*) AS n FROM jobs
               WHERE status IN ('queued', 'running') AND dispatched_at IS NOT NULL
                 AND member_id IS NOT NULL GROUP BY member_id),
           waiting AS (
               SELECT jobs.id, member_id, guild_id, request,
                      coalesce((guilds.settings ->> 'max_running')::int, $3) AS cap,
                      -- ranked among the jobs under the same cap: a job its own server
                      -- holds back does not hold back the member's jobs elsewhere
                      row_number() OVER (PARTITION BY member_id, coalesce(
                          (guilds.settings ->> 'max_running')::int, $3) ORDER BY jobs.id) AS rank
               FROM jobs LEFT JOIN guilds ON guilds.id = jobs.guild_id
               WHERE model = $1 AND lane = $2 AND status = 'queued'
                 AND dispatched_at IS NULL)
           SELECT id, member_id, guild_id, request FROM waiting LEFT JOIN flight USING (member_id)
           WHERE member_id IS NULL OR rank <= cap - coalesce(flight.n, 0)
           ORDER BY id""", model, lane, max_in_flight)
    return [WaitingJob(row["id"], row["member_id"], row["guild_id"],
                       GenerationRequest.from_dict(row["request"])) for row in rows]


async def mark_dispatched(conn: asyncpg.Connection, job_ids: list[int]) -> list[Job]:
    """Mark waiting jobs dispatched (the caller then queues them), in the order given;
    a job cancelled meanwhile is left out."""
    rows = await conn.fetch(
        f"""UPDATE jobs SET dispatched_at = now()
            WHERE id = ANY($1::bigint[]) AND status = 'queued' AND dispatched_at IS NULL
            RETURNING {_COLUMNS}""", job_ids)
    jobs = {row["id"]: Job.from_row(row) for row in rows}
    return [jobs[job_id] for job_id in job_ids if job_id in jobs]


async def fair_share_state(conn: asyncpg.Connection, stream: str) -> dict | None:
    return await conn.fetchval("SELECT state FROM fair_share WHERE stream = $1", stream)


async def save_fair_share_state(conn: asyncpg.Connection, stream: str, state: dict) -> None:
    await conn.execute(
        """INSERT INTO fair_share (stream, state) VALUES ($1, $2)
           ON CONFLICT (stream) DO UPDATE SET state = $2, updated_at = now()""", stream, state)


@dataclass(frozen=True)
class Usage:
    jobs: int
    gpu_ms: int


async def member_usage(conn: asyncpg.Connection, member_id: int, since: datetime) -> Usage:
    """Jobs a member started since a time, and the GPU time the finished ones took."""
    row = await conn.fetchrow(
        """SELECT count(*) AS jobs, coalesce(sum(gpu_ms), 0) AS gpu_ms
           FROM jobs WHERE member_id = $1 AND created_at >= $2""", member_id, since)
    return Usage(jobs=row["jobs"], gpu_ms=row["gpu_ms"])


async def stale_jobs(conn: asyncpg.Connection, no_progress_since: datetime,
                     limit: int = 1000) -> list[Job]:
    """Dispatched, unfinished jobs with no sign of life since a time, oldest first
    (the reconciler checks they still have a stream entry)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM jobs
            WHERE status IN ('queued', 'running') AND dispatched_at IS NOT NULL
              AND coalesce(progress_at, dispatched_at) < $1
            ORDER BY coalesce(progress_at, dispatched_at) LIMIT $2""", no_progress_since, limit)
    return [Job.from_row(row) for row in rows]


async def member_active_jobs(conn: asyncpg.Connection, member_id: int) -> list[Job]:
    """A member's queued and running jobs, oldest first (for /info)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM jobs
            WHERE member_id = $1 AND status IN ('queued', 'running') ORDER BY id""", member_id)
    return [Job.from_row(row) for row in rows]


async def jobs_showing_progress(conn: asyncpg.Connection) -> list[Job]:
    """Unfinished jobs with a status message to edit (a restarted bot watches them again)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM jobs
            WHERE status IN ('queued', 'running') AND status_message_id IS NOT NULL
            ORDER BY id""")
    return [Job.from_row(row) for row in rows]


async def job_for_interaction(conn: asyncpg.Connection, interaction_id: int) -> Job | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE interaction_id = $1",
                              interaction_id)
    return None if row is None else Job.from_row(row)


async def cancelled_since(conn: asyncpg.Connection, since: datetime) -> list[int]:
    """The ids of jobs cancelled since then (their workers must see the cancel flag)."""
    rows = await conn.fetch(
        """SELECT id FROM jobs WHERE status = 'cancelled' AND finished_at >= $1
           ORDER BY id""", since)
    return [row["id"] for row in rows]
