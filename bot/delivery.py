"""Delivery: finished jobs from the results stream become grid messages in their channel.

Several bot processes may read the stream (one consumer group); PostgreSQL's conditional
completion decides which one posts, so a result is never posted twice. Results are
ordinary channel messages, not interaction follow-ups: those die after 15 minutes, and a
queue can be longer than that.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket

import discord
import redis.asyncio as redis

from bot.buttons import grid_view, image_view
from bot.progress import status_text
from db.jobs import Job, complete_job, fail_delivery, finish_job, get_job, set_message_ids
from generation.blobs import grid_key, image_key
from generation.contract import GenerationResult
from generation.keys import DELIVERY_GROUP

log = logging.getLogger(__name__)
ABANDONED_AFTER_MS = 60_000


class Delivery:
    def __init__(self, bot):
        self.bot = bot
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"

    async def run(self) -> None:
        queue = self.bot.services.queue
        await self._ensure_group()
        await self._claim_abandoned()
        start = "0"  # first what this consumer read but did not acknowledge, then new ones
        while True:
            try:
                reply = await queue.redis.xreadgroup(
                    DELIVERY_GROUP, self.consumer, {queue.keys.results: start}, count=10,
                    block=1000)
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                await self._ensure_group()
                continue
            except (redis.ConnectionError, OSError) as error:
                log.warning("Redis is unreachable (%s); retrying in 1 s", error)
                await asyncio.sleep(1)
                continue
            entries = [entry for _, stream_entries in reply or [] for entry in stream_entries]
            for entry_id, fields in entries:
                await self._deliver_and_ack(entry_id, fields)
            if start != ">":
                # Page on through the backlog: an entry that failed stays pending (for the
                # next start) and must not be read again and again here.
                start = entries[-1][0] if entries else ">"

    async def _deliver_and_ack(self, entry_id: str, fields: dict) -> None:
        queue = self.bot.services.queue
        try:
            await self._deliver(fields)
        except Exception:
            # Left unacknowledged: delivered at this bot's next start (the completion in
            # PostgreSQL stands, and a job succeeded without a message gets posted then).
            log.exception("job %s: delivery failed", fields.get("job"))
            return
        try:
            await queue.redis.xack(queue.keys.results, DELIVERY_GROUP, entry_id)
        except (redis.RedisError, OSError) as error:
            # Delivered but still pending: the next start reads it again, and PostgreSQL
            # (the result message id) and the post's nonce keep it from being posted twice.
            log.warning("job %s: delivered, not acknowledged (%s)", fields.get("job"), error)

    async def _claim_abandoned(self) -> None:
        """Results a bot read but never acknowledged (it died) become ours after a minute."""
        queue = self.bot.services.queue
        await queue.redis.xautoclaim(queue.keys.results, DELIVERY_GROUP, self.consumer,
                                     ABANDONED_AFTER_MS, start_id="0-0", count=1000)

    async def _ensure_group(self) -> None:
        queue = self.bot.services.queue
        try:
            await queue.redis.xgroup_create(queue.keys.results, DELIVERY_GROUP, id="0",
                                            mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _deliver(self, fields: dict) -> None:
        if not fields.get("job", "").isdigit():
            return  # not one of ours (e.g. a CLI job on a shared Redis)
        try:
            if fields["status"] == "succeeded":
                await self._post_grid(GenerationResult.from_json(fields["result"]))
            else:
                await self._post_failure(int(fields["job"]), fields["status"],
                                         fields.get("error", ""))
        except discord.HTTPException as error:
            log.warning("job %s: Discord refused the post (%s); not retrying", fields["job"],
                        error)

    async def _post_grid(self, result: GenerationResult) -> None:
        services = self.bot.services
        async with services.db.acquire() as conn:
            won = await complete_job(conn, result)
            job = await get_job(conn, int(result.job_id))
        if won:
            await services.dispatch_waiting(job.member_id)  # the slot it held is free
        # Lost the race: post only if the winner completed the job but died before posting.
        if job is None or (not won and (job.status != "succeeded" or job.result_message_id)):
            return
        try:
            message = await post_result(self.bot, job, nonce=f"grid-{job.id}")
        except (discord.Forbidden, discord.NotFound) as error:
            # The channel is gone or closed to us: retrying cannot help, so the job fails
            # once, here, instead of every bot trying again at every start.
            async with services.db.acquire() as conn:
                await fail_delivery(conn, job.id, f"cannot post in its channel: {error.text}")
            raise
        async with services.db.acquire() as conn:
            await set_message_ids(conn, job.id, result_message_id=message.id)

    async def _post_failure(self, job_id: int, status: str, error: str) -> None:
        async with self.bot.services.db.acquire() as conn:
            if not await finish_job(conn, job_id, status, error or status):
                return
            job = await get_job(conn, job_id)
        await self.bot.services.dispatch_waiting(job.member_id)
        if status == "cancelled" or job.channel_id is None:
            return
        channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(
            job.channel_id)
        await channel.send(f"<@{job.member_id}> job {job_id} could not be drawn: {error}")


async def post_result(bot, job: Job, nonce: str | None = None,
                      channel: discord.abc.Messageable | None = None) -> discord.Message:
    """A finished job as an ordinary channel message with its buttons: a grid, or for an
    upscale the one image. A nonce makes Discord return the first message on a repeat.
    channel: where to post it (/show's), else the job's own channel."""
    upscale = job.kind == "upscale"
    key = image_key(job.id, 1) if upscale else grid_key(job.id)
    data = await asyncio.to_thread(bot.services.blobs.get, key)
    channel = channel or bot.get_channel(job.channel_id) or await bot.fetch_channel(
        job.channel_id)
    return await channel.send(
        status_text(job) + (" — upscaled 2×" if upscale else ""),
        file=discord.File(io.BytesIO(data), f"dreamloop-{job.id}-2x.png" if upscale
                          else f"dreamloop-{job.id}.webp"),
        view=image_view(job.id, 1, upscaled=True) if upscale else grid_view(job.id), nonce=nonce)
