"""`dreamloop bench db`: whole job lifecycles and /rate rounds per second against a
bare-insert baseline.

Runs in a schema of its own, dropped afterwards, so it never touches real data.
A lifecycle is what the bot and the deliverer do per job: create it (with its
member and guild), mark it running, complete it with four images. A /rate round is what
one vote costs: choose the member's next pair among RATE_IMAGES images of RATE_PROMPTS
prompts by two model versions, record it as shown, and record the vote.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg

from db.connection import create_pool, fresh_schema
from db.jobs import complete_job, create_job, mark_running
from db.migrate import migrate
from db.model_versions import ensure_model_version
from db.rate_pairs import next_pair, record_vote
from generation.contract import GenerationRequest, GenerationResult, JobKind, ResultImage

WRITER_COUNTS = (1, 16)
RATE_JOBS, RATE_PROMPTS, RATE_MEMBERS = 25_000, 5_000, 500  # 100,000 images
_REQUEST = GenerationRequest(kind=JobKind.IMAGINE, prompt="a red fox in snow", model="bench",
                             width=1024, height=1024, steps=30, guidance=5.0, sampler="euler",
                             seed=1, user_id=1, guild_id=1, channel_id=1)


async def bench_db(url: str, seconds: float, report: Callable[[str], None]) -> dict:
    async with fresh_schema(url, "dreamloop_bench") as schema:
        pool = await create_pool(url, size=max(WRITER_COUNTS) + 1,
                                 server_settings={"search_path": schema})
        try:
            return await _measure(pool, seconds, report)
        finally:
            await pool.close()


async def _measure(pool: asyncpg.Pool, seconds: float, report: Callable[[str], None]) -> dict:
    async with pool.acquire() as conn:
        await migrate(conn)
        await conn.execute("CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, at timestamptz "
                           "NOT NULL DEFAULT now())")
        version_id = (await ensure_model_version(conn, "bench", "bench", "bench")).id
        server = await conn.fetchval("SHOW server_version")
    keys = itertools.count(1)
    figures = {"seconds_per_run": seconds, "server_version": server}
    for writers in WRITER_COUNTS:
        report(f"{writers} writer(s): baseline, then job lifecycles…")
        baseline = await _rate(pool, writers, seconds, _bare_insert)
        jobs = await _rate(pool, writers, seconds, lambda c: _lifecycle(c, version_id, keys))
        figures |= {f"baseline_tx_per_s_{writers}": round(baseline, 1),
                    f"jobs_per_s_{writers}": round(jobs, 1),
                    f"jobs_vs_baseline_{writers}": round(jobs / baseline, 3)}
    first, last = WRITER_COUNTS[0], WRITER_COUNTS[-1]
    figures["jobs_scaling"] = round(figures[f"jobs_per_s_{last}"] / figures[f"jobs_per_s_{first}"],
                                    2)
    return figures | await _measure_rate(pool, seconds, report)


async def _measure_rate(pool: asyncpg.Pool, seconds: float,
                        report: Callable[[str], None]) -> dict:
    report(f"/rate: {4 * RATE_JOBS:,} images of {RATE_PROMPTS:,} prompts…")
    async with pool.acquire() as conn:
        await _seed_rate_images(conn)
    rng, figures = random.Random(1), {"rate_images": 4 * RATE_JOBS}
    for writers in WRITER_COUNTS:
        report(f"{writers} writer(s): baseline, then /rate rounds…")
        baseline = await _rate(pool, writers, seconds, _bare_insert)
        rounds = await _rate(pool, writers, seconds, lambda c: _rate_round(c, rng))
        figures |= {f"rate_rounds_per_s_{writers}": round(rounds, 1),
                    f"rate_vs_baseline_{writers}": round(rounds / baseline, 3)}
    return figures


async def _seed_rate_images(conn: asyncpg.Connection) -> None:
    """RATE_JOBS finished four-image jobs, prompts and versions taking turns."""
    versions = [(await ensure_model_version(conn, name, "bench", "bench")).id
                for name in ("bench@a", "bench@b")]
    await conn.execute(
        """INSERT INTO members (id) SELECT generate_series(1, $1) ON CONFLICT DO NOTHING""",
        RATE_MEMBERS)
    await conn.execute(
        """WITH made AS (
               INSERT INTO jobs (kind, status, model, model_version_id, request, member_id,
                                 finished_at, dispatched_at)
               SELECT 'imagine', 'succeeded', 'bench', ($2::bigint[])[1 + g % 2],
                      jsonb_build_object('prompt', 'prompt ' || g % $3), 1 + g % $4,
                      now(), now()
               FROM generate_series(1, $1) AS g
               RETURNING id, model_version_id)
           INSERT INTO images (job_id, slot, seed, blob_key, width, height, sha256,
                               model_version_id)
           SELECT id, slot, slot, 'bench/' || id || '/' || slot, 1024, 1024, repeat('0', 64),
                  model_version_id
           FROM made, generate_series(1, 4) AS slot""",
        RATE_JOBS, versions, RATE_PROMPTS, RATE_MEMBERS)
    await conn.execute("ANALYZE")


async def _rate_round(conn: asyncpg.Connection, rng: random.Random) -> None:
    member = rng.randint(1, RATE_MEMBERS)
    shown = await next_pair(conn, member, rng)
    await record_vote(conn, shown.id, member, rng.choice(("a", "b", "tie")))


async def _rate(pool: asyncpg.Pool, writers: int, seconds: float,
                work: Callable[[asyncpg.Connection], Awaitable[None]]) -> float:
    """Completed units of work per second, with `writers` connections working at once."""
    deadline = time.perf_counter() + seconds

    async def writer() -> int:
        done = 0
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                await work(conn)
                done += 1
        return done

    start = time.perf_counter()
    total = sum(await asyncio.gather(*(writer() for _ in range(writers))))
    return total / (time.perf_counter() - start)


async def _bare_insert(conn: asyncpg.Connection) -> None:
    # The least a committed write can cost: one round trip, one row, one commit.
    await conn.execute("INSERT INTO bench_baseline DEFAULT VALUES")


async def _lifecycle(conn: asyncpg.Connection, version_id: int, keys: itertools.count) -> None:
    job, _ = await create_job(conn, _REQUEST, model_version_id=version_id,
                              interaction_id=next(keys))
    await mark_running(conn, job.id)
    await complete_job(conn, _result(job.id))


def _result(job_id: int) -> GenerationResult:
    images = tuple(ResultImage(slot=slot, seed=slot, key=f"images/{job_id}/{slot}.png",
                               width=1024, height=1024, sha256="0" * 64)
                   for slot in range(1, 5))
    return GenerationResult(job_id=str(job_id), images=images, gpu_ms=2000, encode_ms=50,
                            batch_size=1)
