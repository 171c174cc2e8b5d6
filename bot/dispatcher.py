"""The dispatcher: every job waits in PostgreSQL, and the dispatcher hands jobs to their
stream (jobs:{model}:{lane}) only a few ahead of the workers, in fair-share order.

Workers take a stream's entries first come, first served, so whatever order the streams
hold is the order the GPUs draw in. Keeping only DREAMLOOP_DISPATCH_AHEAD jobs per serving
worker in a stream leaves the order to be decided here, at the last moment, by deficit
round-robin on predicted GPU time (bot/fair_share.py): a member who floods the queue fills
only their own turns, and a quick job of someone else waits about one job, not the flood.

Several bot processes may dispatch: one at a time per database (a PostgreSQL advisory
lock, held from reading the waiting jobs until their entries are in Redis), so streams
are never overfilled and a member's concurrent cap holds across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as redis

from bot.fair_share import NOBODY, Candidate, FairShare, fifo, predicted_cost
from db.jobs import (
    Job,
    WaitingJob,
    fair_share_state,
    mark_dispatched,
    save_fair_share_state,
    waiting_jobs,
    waiting_streams,
)

log = logging.getLogger(__name__)

INTERVAL_S = 0.5  # how often a bot looks for room in the streams (workers took entries)
POLICIES = ("drr", "fifo")  # fifo: the old order, kept for `dreamloop bench fairness`
# One dispatcher at a time per schema (a test's schema, or a deployment's).
_LOCK = "SELECT pg_advisory_lock(hashtext(current_schema() || ':dreamloop-dispatch'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext(current_schema() || ':dreamloop-dispatch'))"


@contextlib.asynccontextmanager
async def dispatch_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """While held, no dispatcher of this database hands a job to a stream."""
    await conn.execute(_LOCK)
    try:
        yield
    finally:
        await conn.execute(_UNLOCK)


def job_cost(job: WaitingJob, lane: str) -> float:
    """Predicted GPU time: the steps that run (img2img runs strength × steps, --stop a
    share of them), the pixels and the images."""
    request = job.request
    steps = request.steps * (request.strength or 1.0) * (request.stop or 100) / 100
    return predicted_cost(max(1, round(steps)), request.width, request.height,
                          request.num_images, lane)


class Dispatcher:
    def __init__(self, services, ahead: int = 1, policy: str = "drr"):
        if ahead < 1:
            raise ValueError(f"ahead is {ahead}: at least 1 job per serving worker")
        if policy not in POLICIES:
            raise ValueError(f"policy is {policy!r}: allowed: {', '.join(POLICIES)}")
        self.services, self.ahead, self.policy = services, ahead, policy
        self._lock = asyncio.Lock()
        self._asked = self._covered = 0

    async def run(self) -> None:
        """Dispatch every INTERVAL_S: workers free room in a stream when they take from it."""
        while True:
            await asyncio.sleep(INTERVAL_S)
            try:
                await self.dispatch()
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
                log.warning("dispatcher: pass failed (%s); next in %g s", error, INTERVAL_S)

    async def dispatch(self) -> list[Job]:
        """Fill every stream with waiting jobs up to its room; returns the jobs queued.
        Calls that arrive while a pass runs share the next pass (it sees their jobs)."""
        self._asked += 1
        asked = self._asked
        async with self._lock:
            if self._covered >= asked:
                return []
            self._covered = self._asked
            try:
                return await self._pass()
            except (redis.RedisError, OSError) as error:
                # The jobs stay waiting in PostgreSQL; a later pass queues them.
                log.warning("dispatcher: Redis is unreachable (%s); jobs wait", error)
                return []

    async def _pass(self) -> list[Job]:
        async with self.services.db.acquire() as conn, dispatch_lock(conn):
            jobs: list[Job] = []
            for model, lane in await waiting_streams(conn):
                jobs += await self._fill(conn, model, lane)
            return jobs

    async def _fill(self, conn: asyncpg.Connection, model: str, lane: str) -> list[Job]:
        queue = self.services.queue
        workers = await queue.serving_count(model, lane)
        room = self.ahead * max(1, workers) - await queue.undelivered(model, lane)
        if room <= 0:
            return []
        async with conn.transaction():
            waiting = await waiting_jobs(conn, model, lane, self.services.limits.max_running)
            picked = await self._order(conn, queue.keys.jobs(model, lane), [
                Candidate(job.id, job.member_id or NOBODY, job.guild_id or NOBODY,
                          job_cost(job, lane)) for job in waiting], room)
            jobs = await mark_dispatched(conn, [c.job_id for c in picked])
        # After the commit, before the lock goes: the next pass counts these entries. A
        # failed XADD leaves a dispatched job without an entry: the reconciler's case.
        for job in jobs:
            await self.services.enqueue(job)
        return jobs

    async def _order(self, conn: asyncpg.Connection, stream: str,
                     candidates: list[Candidate], room: int) -> list[Candidate]:
        if self.policy == "fifo":
            return fifo(candidates, room)
        share = FairShare.from_json(await fair_share_state(conn, stream))
        picked = share.pick(candidates, room)
        await save_fair_share_state(conn, stream, share.to_json())
        return picked
