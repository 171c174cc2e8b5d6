"""Cancel flags that reach Redis even when it is down at the moment a member cancels.

/cancel records the cancel in PostgreSQL (the record of truth) first; the worker learns of
it from a flag in Redis, checked between steps. If Redis cannot take the flag, the job is
kept here and the flag is set as soon as Redis answers again, so the GPU stops drawing it.
At start-up the flags of jobs cancelled lately are set again, for a bot that stopped while
it still held some. (Nothing is ever posted for a cancelled job either way: PostgreSQL's
conditional completion refuses it, see db/jobs.py.)
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as redis

from db.jobs import cancelled_since

log = logging.getLogger(__name__)

RETRY_S = 1.0
# A job cancelled longer ago than this is not on any GPU any more.
RECENT = timedelta(hours=1)


class CancelFlags:
    def __init__(self, services, retry_s: float = RETRY_S):
        self.services, self.retry_s = services, retry_s
        self.pending: set[int] = set()  # cancelled in PostgreSQL, flag not yet in Redis

    async def send(self, job_id: int) -> bool:
        """Set the job's flag; False (and kept for later) when Redis cannot take it now."""
        if await self._set([job_id]):
            return True
        log.warning("job %d: cancelled, its flag is set once Redis is back", job_id)
        self.pending.add(job_id)
        return False

    async def run(self) -> None:
        """Set the flags of lately cancelled jobs, then every retry_s those still pending."""
        while not await self._recover():
            await asyncio.sleep(self.retry_s)
        while True:
            await asyncio.sleep(self.retry_s)
            held = sorted(self.pending)
            if held and await self._set(held):
                self.pending.difference_update(held)
                log.info("cancel flags set for job(s) %s now that Redis is back", held)

    async def _recover(self) -> bool:
        try:
            async with self.services.db.acquire() as conn:
                ids = await cancelled_since(conn, datetime.now(UTC) - RECENT)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("cancel flags: the database is unreachable (%s)", error)
            return False
        return await self._set(ids)

    async def _set(self, job_ids: list[int]) -> bool:
        if not job_ids:
            return True
        try:
            await self.services.queue.cancel(*map(str, job_ids))
        except (redis.RedisError, OSError) as error:  # retried every retry_s: no warning
            log.debug("cancel flags for job(s) %s not set yet (%s)", job_ids, error)
            return False
        return True
