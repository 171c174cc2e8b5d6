"""What the bot works with, built once by the dreamloop command and passed in."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as redis

from bot.dispatcher import Dispatcher
from bot.image_prompt import DISCORD_CDN
from bot.limits import Limits, admit
from bot.metrics import BotMetrics
from db.jobs import Job, create_job, get_job, job_for_interaction
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
    # Guilds whose Manage Server members may set traffic weights (/models weight); empty:
    # only while the bot is in exactly one guild. See bot/models.py.
    admin_guilds: tuple[int, ...] = ()
    dispatch_ahead: int = 1  # jobs kept in a stream per worker serving it (bot/dispatcher.py)
    dispatch_policy: str = "drr"
    # DREAMLOOP_EXPORT_SALT: /forget-me records the member's salted hash, so exports
    # (written elsewhere, with the same salt) leave them out. None: not set here.
    export_salt: str | None = None
    metrics: BotMetrics = field(default_factory=BotMetrics)  # its own registry unless given

    def __post_init__(self):
        self.dispatcher = Dispatcher(self, self.dispatch_ahead, self.dispatch_policy)

    async def start_job(self, request: GenerationRequest, interaction_id: int | None,
                        parent_image_id: int | None = None,
                        version_id: int | None = None,
                        lane: str | None = None,
                        edit: dict | None = None) -> tuple[Job, bool]:
        """Record the job within the member's limits (LimitReached says why not) and let the
        dispatcher queue it in its turn; the interaction id makes a retry find the job it
        already made. version_id: the model version drawing it (routed, or its parent
        job's); else the model's own. lane: as asked (--fast, --relax, --turbo; see
        lane_for), else the member's default. edit: an edit's lineage (jobs.edit)."""
        spec = self.registry.get(request.model)
        async with self.db.acquire() as conn:
            if version_id is None:
                # Before the transaction: its upsert locks the version's row, and every job
                # of the model would otherwise wait for this one's commit.
                version_id = (await ensure_model_version(conn, spec.name, spec.name,
                                                         spec.source)).id
            async with conn.transaction():
                job, created = await self._record(conn, request, interaction_id,
                                                  parent_image_id, version_id, lane, edit)
        if not created:
            return job, False
        await self.dispatcher.dispatch()
        async with self.db.acquire() as conn:
            return await get_job(conn, job.id) or job, True

    async def _record(self, conn, request: GenerationRequest, interaction_id: int | None,
                      parent_image_id: int | None, version_id: int,
                      lane: str | None, edit: dict | None) -> tuple[Job, bool]:
        existing = (None if interaction_id is None
                    else await job_for_interaction(conn, interaction_id))
        if existing is not None:
            return existing, False
        chosen = (lane or "fast") if request.user_id is None else await admit(
            conn, self.limits, request.user_id, lane, request.guild_id)
        return await create_job(conn, request, model_version_id=version_id, lane=chosen,
                                dispatch=False, interaction_id=interaction_id,
                                parent_image_id=parent_image_id, edit=edit)

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

    async def dispatch_waiting(self, member_id: int | None = None) -> list[Job]:
        """A job finished or was cancelled, so its member has a slot free: dispatch what
        fits now (every member's, in fair-share order); returns the jobs queued."""
        return await self.dispatcher.dispatch()

    async def lane_for(self, model: str, lane: str) -> tuple[str, str | None]:
        """The lane a job asked for, or the nearest one a worker serves, with a sentence
        saying so. With no worker on the model at all the lane stays: it waits for one."""
        if await self.queue.serving_count(model, lane) or not await self.queue.is_served(model):
            return lane, None
        for other in _FALLBACKS[lane]:
            if await self.queue.serving_count(model, other):
                return other, (f"No worker serves the {lane} lane of {model} now, so this "
                               f"job runs in the {other} lane.")
        return lane, None

    async def enqueue(self, job: Job) -> None:
        try:
            await self.queue.enqueue(str(job.id), job.request, job.lane)
        except (redis.RedisError, OSError) as error:
            # Recorded in PostgreSQL: the reconciler queues it once Redis is back.
            log.warning("job %d recorded but not queued yet (%s)", job.id, error)


# The nearest lanes first: turbo falls back to fast, fast to relax, relax to fast.
_FALLBACKS = {"turbo": ("fast", "relax"), "fast": ("relax", "turbo"), "relax": ("fast", "turbo")}


class WeightRefused(ValueError):
    """A traffic weight cannot be set as asked; the message says what is allowed."""


async def check_traffic_weight(conn: asyncpg.Connection, queue: JobQueue, name: str,
                               weight: float) -> ModelVersion:
    """The version called name, when it may get this traffic weight (`dreamloop models
    weight` and /models weight alike); WeightRefused says why not. A positive weight for a
    version whose model no worker serves now is refused: routing would send jobs nowhere."""
    if not (math.isfinite(weight) and weight >= 0):
        raise WeightRefused(f"{weight!r} is not a traffic weight: use a number of at least 0 "
                            f"(0 takes the version out of routing)")
    versions = await list_model_versions(conn)
    version = next((v for v in versions if v.name == name), None)
    if version is None:
        known = ", ".join(repr(v.name) for v in versions) or "none yet"
        raise WeightRefused(f"there is no model version {name!r} (the versions: {known}): add "
                            f"it with `dreamloop models add {name} --model MODEL` first")
    if weight > 0 and not await queue.is_served(version.model):
        raise WeightRefused(f"no worker serves {version.model!r} (the model of {name!r}) now: "
                            f"start one (`dreamloop worker --model {version.model}`) first; "
                            f"a weight of 0 is always allowed")
    return version


def weights_refusal(guild_id: int | None, admin_guilds: tuple[int, ...],
                    guild_count: int) -> str | None:
    """Why traffic weights may not be set from this guild, or None when they may. They are
    shared by every guild the bot is in, so Manage Server in any one is not enough: the guild
    must be listed in admin_guilds, or, when none is, be the only guild the bot is in."""
    if admin_guilds:
        if guild_id in admin_guilds:
            return None
        return (f"Traffic weights are shared by every server the bot is in, so only the "
                f"servers listed in DREAMLOOP_ADMIN_GUILDS may set them, and this one "
                f"({guild_id}) is not listed.")
    if guild_count == 1:
        return None
    return (f"Traffic weights are shared by every server the bot is in ({guild_count} now), "
            f"so they can be set here only once the bot's operator lists this server's id "
            f"({guild_id}) in DREAMLOOP_ADMIN_GUILDS.")


def new_seed() -> int:
    return random.SystemRandom().randrange(0, MAX_SEED + 1)
