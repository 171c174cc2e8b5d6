"""The reconciler: PostgreSQL is the record of truth, Redis only carries work.

Every pass it looks at the jobs PostgreSQL says are queued or running and re-enqueues
those Redis knows nothing of, neither a stream entry nor a result: after a Redis flush or a
restart without persistence, or when a bot died between recording a job and queueing it.
A job a worker finished whose result PostgreSQL has not heard of yet (delivery is behind,
PostgreSQL was down) has a done marker and is left alone: it must not run twice. One
process reconciles at a time (a PostgreSQL advisory lock), however many bots run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as redis

from db.jobs import stale_jobs

log = logging.getLogger(__name__)

RECONCILER_LOCK = int.from_bytes(b"dlrecon", "big")
INTERVAL_S = 30.0
# A job younger than this may be between its INSERT and its XADD: leave it alone.
MIN_AGE = timedelta(seconds=10)


@contextlib.asynccontextmanager
async def reconciler_lock(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """While held, no reconciler pass re-enqueues anything (each skips its turn)."""
    await conn.execute("SELECT pg_advisory_lock($1)", RECONCILER_LOCK)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", RECONCILER_LOCK)


class Reconciler:
    def __init__(self, services, interval_s: float = INTERVAL_S, min_age: timedelta = MIN_AGE):
        self.services, self.interval_s, self.min_age = services, interval_s, min_age

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.reconcile_once()
            except (redis.RedisError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    OSError) as error:
                # A restarting Redis or PostgreSQL must not end the safety net for good.
                log.warning("reconciler: pass failed (%s); next pass in %g s", error,
                            self.interval_s)

    async def reconcile_once(self) -> list[int]:
        """Re-enqueue the dispatched jobs Redis has lost, and dispatch waiting jobs that
        have a free slot; returns the ids re-enqueued ([] if another process holds the
        lock)."""
        async with self.services.db.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RECONCILER_LOCK):
                return []
            try:
                jobs = await stale_jobs(conn, datetime.now(UTC) - self.min_age)
                lost = [job.id for job in jobs if await self._requeue_if_lost(job)]
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", RECONCILER_LOCK)
        # A bot that died between a job finishing and the next one's dispatch left a slot
        # free: fill it (the dispatcher's own loop does too, in every bot).
        await self.services.dispatch_waiting()
        return lost

    async def _requeue_if_lost(self, job) -> bool:
        if not await self.services.queue.enqueue_if_lost(str(job.id), job.request, job.lane):
            return False
        log.warning("reconciler: job %d had no stream entry and no result; queued it again",
                    job.id)
        return True
