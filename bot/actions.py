"""What the buttons do, shared by the grid's buttons and a single image's buttons."""

from __future__ import annotations

import asyncio
import dataclasses
import functools

import discord

from bot import image_policy
from bot.click_guard import click_refusal
from bot.limits import LimitReached
from bot.rule_check import Checked, PromptRefused, refuse_banned_words
from bot.services import new_seed
from bot.status import cannot_post, image_text, post_status
from bot.uploads import image_file
from db.feedback import Comparison, FeedbackEvent, record_comparison, record_feedback
from db.images import StoredImage, get_image, job_images
from db.jobs import Job, get_job
from flywheel.pairs import PAIR_SOURCES, Decision, GridImage, pairs_from
from generation.contract import VARIATION_STRENGTH, GenerationRequest, InvalidRequest, JobKind


def explain_limits(callback):
    """A member limit, a request the click would make that is not allowed (a variation
    of an upscale larger than a job may be) or a prompt the server's rules now refuse
    becomes an ephemeral message (the callback has already deferred, so it answers with a
    follow-up)."""
    @functools.wraps(callback)
    async def wrapper(self, interaction: discord.Interaction) -> None:
        try:
            await callback(self, interaction)
        except (LimitReached, InvalidRequest, PromptRefused) as refusal:
            await interaction.followup.send(str(refusal), ephemeral=True)
    return wrapper


MAX_JOB_ID = 2**63 - 1  # job ids are PostgreSQL bigints
DOUBLE_CLICK_S = 10
DOUBLE_CLICK = "Already on it: that was the same button twice."


async def click_refused(interaction: discord.Interaction) -> str | None:
    """Why this click does nothing (too many clicks, or a double click); None to go on.
    The member's limit is counted first, so a refused click never marks the button."""
    return await click_refusal(interaction) or (
        None if await first_click(interaction) else DOUBLE_CLICK)


async def first_click(interaction: discord.Interaction) -> bool:
    """False for a repeat of the same member's click within a few seconds: a double click
    makes one job and one feedback event (each click is its own interaction, so the
    interaction id cannot tell)."""
    queue = interaction.client.services.queue
    key = queue.keys.click(interaction.user.id, interaction.data["custom_id"])
    return bool(await queue.redis.set(key, 1, nx=True, ex=DOUBLE_CLICK_S))


async def find(interaction: discord.Interaction, job_id: int,
               slot: int | None) -> tuple[Job | None, StoredImage | None]:
    """The job and image a button names; (None, None) for a job id no job can have (a
    forged custom_id) and for another server's job (a button copied from there: that it
    exists is none of this server's business)."""
    if job_id > MAX_JOB_ID:
        return None, None
    async with interaction.client.services.db.acquire() as conn:
        job = await get_job(conn, job_id)
        image = await get_image(conn, job_id, slot) if slot else None
    if job is None or job.guild_id != interaction.guild_id:
        return None, None
    return job, image


async def record(interaction: discord.Interaction, kind: str, job: Job,
                 image: StoredImage | None = None, slot: int | None = None) -> None:
    """One feedback event (who, what, the slot it was shown in, since when) and, for a pick,
    the pairs it implies (flywheel/pairs.py), in one transaction."""
    event = FeedbackEvent(member_id=interaction.user.id, kind=kind, job_id=job.id,
                          image_id=image.id if image else None, shown_slot=slot,
                          shown_at=interaction.message.created_at,
                          decided_at=interaction.created_at, interaction_id=interaction.id)
    async with interaction.client.services.db.acquire() as conn, conn.transaction():
        event_id, created = await record_feedback(conn, event)
        if created and kind in PAIR_SOURCES:
            await _record_pairs(conn, event, event_id, job)
    if created:  # committed; a repeated click is not a second vote
        interaction.client.services.metrics.votes.labels(kind).inc()


async def _record_pairs(conn, event: FeedbackEvent, event_id: int, job: Job) -> None:
    grid = [GridImage(image.id, image.slot) for image in await job_images(conn, job.id)]
    decision = Decision(event.kind, event.member_id, event.shown_at, event.decided_at,
                        event.image_id, event.shown_slot)
    for pair in pairs_from(decision, grid):
        await record_comparison(conn, Comparison(
            image_a_id=pair.image_a_id, image_b_id=pair.image_b_id,
            prompt=job.request.prompt, label="a", source=pair.source, member_id=pair.member_id,
            shown_slot_a=pair.shown_slot_a, shown_slot_b=pair.shown_slot_b,
            decision_ms=pair.decision_ms, feedback_event_id=event_id))


def clicker_owns(request: GenerationRequest, interaction: discord.Interaction,
                 **changes) -> GenerationRequest:
    """The request with new seeds, owned by whoever clicked (GPU work counts against them)."""
    return dataclasses.replace(request, seed=new_seed(), user_id=interaction.user.id,
                               channel_id=interaction.channel_id,
                               guild_id=interaction.guild_id, **changes)


async def start_follow_up(interaction: discord.Interaction, request: GenerationRequest,
                          parent: Job, image: StoredImage | None = None,
                          edit: dict | None = None) -> Job:
    """Queue follow-up work (V, 🔄, Vary, Upscale) and show it in the channel as /imagine
    does: a public status message with its progress, saying what the work is. The server's
    rules may have changed since the job was made, so its prompt is checked again. edit:
    an edit's lineage as the member chose it (jobs.edit)."""
    await refuse_banned_words(interaction.client.services.db, interaction,
                        [Checked("prompt", "This job's prompt", request.prompt)])
    new_job, created = await interaction.client.services.start_job(
        request, interaction.id, image.id if image else None,
        version_id=parent.model_version_id, edit=edit)
    if created:
        try:
            await post_status(interaction.client, interaction.channel, new_job)
        except discord.HTTPException as error:
            await interaction.followup.send(cannot_post(new_job, error), ephemeral=True)
    return new_job


async def queue_variation(interaction: discord.Interaction, job: Job, image: StoredImage,
                          strength: str) -> Job:
    request = clicker_owns(job.request, interaction, kind=JobKind.VARIATION,
                           parent_image=image.blob_key, strength=VARIATION_STRENGTH[strength],
                           width=image.width, height=image.height, num_images=4)
    return await start_follow_up(interaction, request, job, image)


async def queue_upscale(interaction: discord.Interaction, job: Job, image: StoredImage) -> Job:
    spec = interaction.client.services.registry.get(job.request.model)
    request = clicker_owns(job.request, interaction, kind=JobKind.UPSCALE,
                           parent_image=image.blob_key, strength=spec.upscale_strength,
                           width=image.width, height=image.height, num_images=1)
    return await start_follow_up(interaction, request, job, image)


async def judge_image(interaction: discord.Interaction, job: Job,
                      image: StoredImage) -> image_policy.Judgement:
    """The server's image policy on this image, here; a held-back one is logged now."""
    db = interaction.client.services.db
    judgement = await image_policy.judge(db, interaction.channel, [image])
    if judgement.blocks:
        await image_policy.log_judgement(db, job, interaction.channel, judgement)
    return judgement


async def take_image(interaction: discord.Interaction, job: Job, image: StoredImage,
                     view: discord.ui.View, judgement: image_policy.Judgement) -> None:
    """U: the grid's image full size in the channel, with its prompt and its own buttons
    (a WebP when the PNG would pass the channel's upload limit; a spoiler when the image
    policy says so)."""
    data = await asyncio.to_thread(interaction.client.services.blobs.get, image.blob_key)
    name = judgement.filename(f"dreamloop-{image.job_id}-{image.slot}.png")
    file = await image_file(data, name, interaction.filesize_limit)
    await interaction.channel.send(image_text(job, image.slot, interaction.user.id), file=file,
                                   view=view)
    await image_policy.log_judgement(interaction.client.services.db, job, interaction.channel,
                                     judgement)
