"""What the bot works with, built once by the dreamloop command and passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass

import asyncpg

from db.jobs import Job, create_job
from db.model_versions import ensure_model_version
from generation.blobs import BlobStore
from generation.contract import MAX_SEED, GenerationRequest
from generation.queue import JobQueue
from generation.registry import Registry


@dataclass
class BotServices:
    registry: Registry
    db: asyncpg.Pool
    queue: JobQueue
    blobs: BlobStore

    async def start_job(self, request: GenerationRequest, interaction_id: int,
                        parent_image_id: int | None = None) -> tuple[Job, bool]:
        """Record the job (the interaction id makes a retry find it) and queue it once."""
        spec = self.registry.get(request.model)
        async with self.db.acquire() as conn:
            version = await ensure_model_version(conn, spec.name, spec.name, spec.source)
            job, created = await create_job(conn, request, model_version_id=version.id,
                                            interaction_id=interaction_id,
                                            parent_image_id=parent_image_id)
        if created:
            await self.queue.enqueue(str(job.id), request)
        return job, created


def new_seed() -> int:
    return random.SystemRandom().randrange(0, MAX_SEED + 1)
