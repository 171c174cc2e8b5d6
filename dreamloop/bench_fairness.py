"""`dreamloop bench fairness`: how long light members wait while others flood the queue.

Real parts, one process: the bot's services and dispatcher on throwaway PostgreSQL and
Redis (dreamloop/throwaway.py), and a real sampling pool on one engine (tiny-random by
default). Each flooder queues a pile of long jobs (--repeat 4 --steps N, over and over) at
once; each light member draws one short job at a time, the next once the last is done.
A light job's wait: from /imagine (the job's row) until the pool starts sampling it.

Two policies: fifo, as dreamloop dispatched before (every job of a member under its
concurrent cap goes to the stream at once, first come first served), and drr, the
dispatcher's deficit round-robin with a few jobs ahead per worker.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.limits import Limits
from bot.services import BotServices
from db.connection import create_pool
from db.jobs import complete_job, finish_job
from db.migrate import migrate
from dreamloop import throwaway
from dreamloop.settings import Settings
from generation.blobs import LocalBlobStore
from generation.contract import GenerationRequest, GenerationResult, JobKind
from generation.engine import Engine
from generation.keys import Keys
from generation.pool import PoolSettings, SamplingPool
from generation.queue import JobQueue
from generation.registry import Registry

UNLIMITED_AHEAD = 1_000_000  # fifo: the streams take every job the caps let go


@dataclass(frozen=True)
class Load:
    flood_steps: int = 12
    flood_jobs: int = 12  # each flooder's pile
    light_steps: int = 2
    light_members: int = 2
    light_jobs: int = 4  # each light member's, one after another
    ahead: int = 1  # the dispatcher's jobs ahead per worker (DREAMLOOP_DISPATCH_AHEAD)


async def bench_fairness(settings: Settings, registry: Registry, engine: Engine, load: Load,
                         report: Callable[[str], None]) -> dict:
    figures: dict = {"model": engine.spec.name, "device": str(engine.device)}
    for flooders in (0, 1, 2):
        for policy in ("fifo", "drr"):
            report(f"{flooders} flooder(s), {policy}…")
            waits = await _scenario(settings, registry, engine, load, flooders, policy)
            figures[f"light_wait_ms_p50_{flooders}_flooders_{policy}"] = _percentile(waits, 50)
            figures[f"light_wait_ms_p95_{flooders}_flooders_{policy}"] = _percentile(waits, 95)
        for p in (50, 95):
            fifo, drr = (figures[f"light_wait_ms_p{p}_{flooders}_flooders_{x}"]
                         for x in ("fifo", "drr"))
            figures[f"fifo_vs_drr_p{p}_{flooders}_flooders"] = round(fifo / max(drr, 1), 2)
    return figures


async def _scenario(settings: Settings, registry: Registry, engine: Engine, load: Load,
                    flooders: int, policy: str) -> list[int]:
    with tempfile.TemporaryDirectory() as folder:
        keys = Keys(f"dreamloop-bench-fair:{uuid.uuid4().hex[:12]}:")
        async with (throwaway.database(settings, Path(folder), "bench_fair") as url,
                    throwaway.redis(settings, Path(folder), keys.prefix) as (_, client)):
            db = await create_pool(url, size=8)
            try:
                async with db.acquire() as conn:
                    await migrate(conn)
                services = BotServices(
                    registry=registry, db=db, queue=JobQueue(client, keys),
                    blobs=LocalBlobStore(Path(folder) / "blobs"),
                    limits=Limits(max_queued=10_000, per_minute=10_000),
                    dispatch_policy=policy,
                    dispatch_ahead=load.ahead if policy == "drr" else UNLIMITED_AHEAD)
                return await _run(services, engine, load, flooders)
            finally:
                await db.close()


async def _run(services: BotServices, engine: Engine, load: Load, flooders: int) -> list[int]:
    pool = SamplingPool({engine.spec.name: engine}, services.queue, services.blobs,
                        "bench-fair", PoolSettings(block_ms=100))
    stop = asyncio.Event()
    version = await _version(services, engine)
    tasks = [asyncio.create_task(pool.run(stop)), asyncio.create_task(_deliver(services)),
             asyncio.create_task(services.dispatcher.run())]
    try:
        for member in range(flooders):
            for _ in range(load.flood_jobs):
                await _start(services, version, engine, 1000 + member, load.flood_steps)
        finished = await asyncio.gather(*(
            _light_member(services, version, engine, 2000 + m, load)
            for m in range(load.light_members)))
    finally:
        stop.set()
        await _cancel_all(services)
        for task in tasks[1:]:
            task.cancel()
        # Every task to its end (the pool finishes its batch), before the keys go.
        await asyncio.gather(*tasks, return_exceptions=True)
    return await _waits(services, pool, [job for jobs in finished for job in jobs])


async def _version(services: BotServices, engine: Engine) -> int:
    from db.model_versions import ensure_model_version

    async with services.db.acquire() as conn:
        spec = engine.spec
        return (await ensure_model_version(conn, spec.name, spec.name, spec.source)).id


async def _start(services: BotServices, version: int, engine: Engine, member: int,
                 steps: int) -> int:
    request = GenerationRequest(
        kind=JobKind.IMAGINE, prompt=f"member {member}", model=engine.spec.name,
        width=engine.spec.base_resolution, height=engine.spec.base_resolution, steps=steps,
        guidance=engine.spec.guidance, sampler=engine.spec.sampler, seed=member,
        user_id=member, guild_id=1, channel_id=1)
    job, _ = await services.start_job(request, None, version_id=version)
    return job.id


async def _light_member(services, version, engine, member: int, load: Load) -> list[int]:
    jobs = []
    for _ in range(load.light_jobs):
        job_id = await _start(services, version, engine, member, load.light_steps)
        jobs.append(job_id)
        await _until_finished(services, job_id)
    return jobs


async def _until_finished(services: BotServices, job_id: int) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        async with services.db.acquire() as conn:
            if await conn.fetchval("SELECT finished_at FROM jobs WHERE id = $1", job_id):
                return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"job {job_id} was not drawn within 600 s")


async def _deliver(services: BotServices) -> None:
    """The bot's delivery, less Discord: record each result, then dispatch (a slot is free)."""
    last = "0-0"
    while True:
        reply = await services.queue.redis.xread({services.queue.keys.results: last},
                                                 block=1000)
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                async with services.db.acquire() as conn:
                    if fields.get("status") == "succeeded":
                        await complete_job(conn, GenerationResult.from_json(fields["result"]))
                    else:
                        await finish_job(conn, int(fields["job"]), "failed", "bench")
                await services.dispatch_waiting()


async def _cancel_all(services: BotServices) -> None:
    async with services.db.acquire() as conn:
        await conn.execute("UPDATE jobs SET status = 'cancelled', finished_at = now() "
                           "WHERE status IN ('queued', 'running')")


async def _waits(services: BotServices, pool: SamplingPool, job_ids: list[int]) -> list[int]:
    """Creation → dispatch (PostgreSQL's clock) plus dispatch → sampling (the pool's)."""
    sampled = {int(s.job_id): s.waited_ms for s in pool.stats}
    async with services.db.acquire() as conn:
        rows = await conn.fetch(
            """SELECT id, (extract(epoch FROM dispatched_at - created_at) * 1000)::int AS ms
               FROM jobs WHERE id = ANY($1::bigint[])""", job_ids)
    return [row["ms"] + sampled[row["id"]] for row in rows]


def _percentile(values: list[int], percent: int) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))]


def describe(load: Load) -> str:
    return (f"flooders queue {load.flood_jobs} jobs of {load.flood_steps} steps each; "
            f"{load.light_members} light members draw {load.light_jobs} jobs of "
            f"{load.light_steps} steps one after another")

