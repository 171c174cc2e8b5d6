"""What the bot works with, built once by the dreamloop command and passed in."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as redis

from bot.image_prompt import DISCORD_CDN
from bot.limits import Admission, Limits, admit, lock_member
from db.jobs import Job, create_job, dispatch_waiting, job_for_interaction
from db.model_versions import ModelVersion, ensure_model_version, list_model_versions
from flywheel.routing import choose_version
from generation.blobs import BlobStore
from generation.contract import MAX_SEED, GenerationRequest
from generation.queue import JobQueue
from generation.registry import Registry

log = logging.getLogger(__name__)


class NotServed(Exception):
    """Model versions have traffic weights, but no worker serves any of them now."""

    def __init__(self, versions: str):
        super().__init__(f"No worker is drawing with the model versions that get traffic "
                         f"now ({versions}); try again soon, or name a model with --model.")


@dataclass
class BotServices:
    registry: Registry
    db: asyncpg.Pool
    queue: JobQueue
    blobs: BlobStore
    limits: Limits = field(default_factory=Limits)
    image_origins: tuple[str, ...] = DISCORD_CDN  # where image prompts may be fetched from

    async def start_job(self, request: GenerationRequest, interaction_id: int | None,
                        parent_image_id: int | None = None,
                        version_id: int | None = None) -> tuple[Job, bool]:
        """Record the job within the member's limits (LimitReached says why not) and queue it
        once; the interaction id makes a retry find the job it already made. version_id: the
        model version drawing it (routed, or its parent job's); else the model's own."""
        spec = self.registry.get(request.model)
        async with self.db.acquire() as conn, conn.transaction():
            existing = (None if interaction_id is None
                        else await job_for_interaction(conn, interaction_id))
            if existing is not None:
                return existing, False
            admission = Admission("fast", True) if request.user_id is None else await admit(
                conn, self.limits, request.user_id)
            if version_id is None:
                version_id = (await ensure_model_version(conn, spec.name, spec.name,
                                                         spec.source)).id
            job, created = await create_job(conn, request, model_version_id=version_id,
                                            lane=admission.lane, dispatch=admission.dispatch,
                                            interaction_id=interaction_id,
                                            parent_image_id=parent_image_id)
        if created and job.dispatched_at is not None:
            await self._enqueue(job)
        return job, created

    async def route(self) -> ModelVersion | None:
        """The model version for a job nobody chose a model for, drawn by traffic weight
        among the versions a worker serves now; None when no version has traffic.
        NotServed when versions have traffic but no worker serves any of them."""
        async with self.db.acquire() as conn:
            weighted = [v for v in await list_model_versions(conn) if v.traffic_weight > 0]
        served = [v for v in weighted if await self.queue.is_served(v.model)]
        if weighted and not served:
            raise NotServed(", ".join(v.name for v in weighted))
        return choose_version(served, random.SystemRandom())

    async def dispatch_waiting(self, member_id: int | None) -> list[Job]:
        """Queue the member's waiting jobs that fit under their concurrent cap now (after
        one of theirs finished); returns them."""
        if member_id is None:
            return []
        async with self.db.acquire() as conn, conn.transaction():
            await lock_member(conn, member_id)
            jobs = await dispatch_waiting(conn, member_id, self.limits.max_running)
        for job in jobs:
            await self._enqueue(job)
        return jobs

    async def _enqueue(self, job: Job) -> None:
        try:
            await self.queue.enqueue(str(job.id), job.request, job.lane)
        except (redis.RedisError, OSError) as error:
            # Recorded in PostgreSQL: the reconciler queues it once Redis is back.
            log.warning("job %d recorded but not queued yet (%s)", job.id, error)


def new_seed() -> int:
    return random.SystemRandom().randrange(0, MAX_SEED + 1)
