"""Delivery: finished jobs from the results stream become grid messages in their channel.

Several bot processes may read the stream (one consumer group); PostgreSQL's conditional
completion decides which one posts, so a result is never posted twice. Results are
ordinary channel messages, not interaction follow-ups: those die after 15 minutes, and a
queue can be longer than that.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import socket
import time

import discord
import redis.asyncio as redis

from bot import image_policy
from bot.buttons import grid_view, image_view
from bot.retry import ATTEMPTS, with_retries, worth_retrying
from bot.status import clear_status, failure_text, status_text, undelivered_text
from bot.supervisor import stop_if_cancelled
from bot.uploads import UploadTooLarge, image_file, upload_limit
from db.images import job_images
from db.jobs import Job, complete_job, fail_delivery, finish_job, get_job, set_message_ids
from generation.blobs import grid_key, image_key, job_prefix
from generation.contract import GenerationResult
from generation.forget import forget_leftovers
from generation.keys import DELIVERY_GROUP

log = logging.getLogger(__name__)


class Delivery:
    def __init__(self, bot, retry_after_ms: int | None = None):
        self.bot = bot
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        # A result pending this long is claimed and delivered again: twice the workers'
        # lease (a minute by default), time enough for one delivery's own retries.
        self.retry_after_ms = retry_after_ms or 2 * bot.services.queue.lease_ms

    async def run(self) -> None:
        """Read results for ever. Redis errors (a restart, a timeout while it hangs) are
        waited out here; anything else ends run() and its supervisor starts it again."""
        await self._ensure_group()
        start, next_claim = "0", 0.0  # first what this consumer read but did not acknowledge
        while True:
            stop_if_cancelled()
            if time.monotonic() >= next_claim:
                await self._redis_or_wait(self._claim_abandoned())
                next_claim = time.monotonic() + self.retry_after_ms / 4000
            entries = await self._redis_or_wait(self._read(start))
            for entry_id, fields in entries or []:
                await self._deliver_and_ack(entry_id, fields)
            if start != ">" and entries is not None:
                # Page on through the backlog: an entry that failed stays pending (for the
                # periodic claim below) and must not be read again and again here.
                start = entries[-1][0] if entries else ">"

    async def _read(self, start: str) -> list:
        queue = self.bot.services.queue
        try:
            reply = await queue.redis.xreadgroup(
                DELIVERY_GROUP, self.consumer, {queue.keys.results: start}, count=10,
                block=1000)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self._ensure_group()  # Redis restarted without persistence, or was flushed
            return []
        return [entry for _, stream_entries in reply or [] for entry in stream_entries]

    @staticmethod
    async def _redis_or_wait(command):
        """command's reply, or None after a second's wait if Redis failed (any RedisError:
        a timeout must not end delivery for good)."""
        try:
            return await command
        except (redis.RedisError, OSError) as error:
            log.warning("Redis failed (%r); retrying in 1 s", error)
            await asyncio.sleep(1)
            return None

    async def _deliver_and_ack(self, entry_id: str, fields: dict) -> None:
        queue = self.bot.services.queue
        try:
            await self._deliver(entry_id, fields)
        except Exception:
            # Left unacknowledged: claimed and delivered again once it has been idle for
            # retry_after_ms (the completion in PostgreSQL stands, and a job succeeded
            # without a message gets posted then).
            log.exception("job %s: delivery failed; retrying later", fields.get("job"))
            return
        try:
            await queue.redis.xack(queue.keys.results, DELIVERY_GROUP, entry_id)
        except (redis.RedisError, OSError) as error:
            # Delivered but still pending: it is claimed again, and PostgreSQL (the result
            # message id) and the post's nonce keep it from being posted twice.
            log.warning("job %s: delivered, not acknowledged (%s)", fields.get("job"), error)

    async def _claim_abandoned(self) -> None:
        """Results left pending for retry_after_ms become ours and are delivered again:
        those of a bot that died, and this bot's own that failed (PostgreSQL dropped the
        connection after the commit, Discord dropped the request)."""
        queue, cursor = self.bot.services.queue, "0-0"
        while True:
            cursor, claimed, *_ = await queue.redis.xautoclaim(
                queue.keys.results, DELIVERY_GROUP, self.consumer, self.retry_after_ms,
                start_id=cursor, count=100)
            for entry_id, fields in claimed:
                if fields:  # an entry deleted meanwhile comes back without fields
                    await self._deliver_and_ack(entry_id, fields)
            if cursor in ("0-0", None):
                return

    async def _ensure_group(self) -> None:
        queue = self.bot.services.queue
        try:
            await queue.redis.xgroup_create(queue.keys.results, DELIVERY_GROUP, id="0",
                                            mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def _deliver(self, entry_id: str, fields: dict) -> None:
        if not fields.get("job", "").isdigit():
            return  # not one of ours (e.g. a CLI job on a shared Redis)
        succeeded = fields["status"] == "succeeded"
        # A result that cannot be read stays pending (and is looked into), even if forgotten.
        result = GenerationResult.from_json(fields["result"]) if succeeded else None
        if await self._forgotten(fields["job"], entry_id):
            return
        try:
            if result is not None:
                await self._post_grid(result, _finished_ms(entry_id))
            else:
                await self._post_failure(int(fields["job"]), fields["status"],
                                         fields.get("error", ""))
        except discord.HTTPException as error:
            log.warning("job %s: Discord refused the post (%s); not retrying", fields["job"],
                        error)

    async def _forgotten(self, job_id: str, entry_id: str) -> bool:
        """A result for a job PostgreSQL no longer has: its member was forgotten while a
        worker drew it (bot/forget.py). Nothing is posted, and what the worker left goes."""
        services = self.bot.services
        async with services.db.acquire() as conn:
            if await get_job(conn, int(job_id)) is not None:
                return False
        await asyncio.to_thread(services.blobs.delete_prefix, job_prefix(job_id))
        await forget_leftovers(services.queue, job_id, entry_id)
        log.info("job %s: a result for a forgotten job; its blobs and entry are deleted",
                 job_id)
        return True

    async def _post_grid(self, result: GenerationResult, finished_ms: int) -> None:
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
            # The nonce makes Discord return the first message if a retried post had
            # in fact gone through (a 5xx after the message was made).
            message = await with_retries(
                lambda: post_result(self.bot, job, nonce=f"grid-{job.id}"), f"job {job.id}")
        except discord.HTTPException as error:
            await self._undeliverable(job, error)
            return
        except UploadTooLarge as error:  # no retry can make it fit: fail once, say so
            await self._fail_delivery(job, str(error), f"{status_text(job)} — {error}")
            return
        async with services.db.acquire() as conn:
            await set_message_ids(conn, job.id, result_message_id=message.id)
        services.metrics.delivered(job.kind, job.queue_ms, finished_ms)
        await clear_status(self.bot, job)

    async def _undeliverable(self, job: Job, error: discord.HTTPException) -> None:
        """Discord will not take the result: the job fails once, here (not at every bot's
        every start), and its member is told where that is still possible."""
        closed = isinstance(error, (discord.Forbidden, discord.NotFound))
        tries = ATTEMPTS if worth_retrying(error) else 1
        # A channel gone or closed to us: nobody can be told there.
        reason = (f"cannot post in its channel: {error.text}" if closed else
                  f"Discord refused its post {tries} time(s): {error.status} {error.text}")
        await self._fail_delivery(job, reason,
                                  None if closed else undelivered_text(job, error, tries))

    async def _fail_delivery(self, job: Job, reason: str, told: str | None) -> None:
        log.warning("job %s: %s", job.id, reason)
        async with self.bot.services.db.acquire() as conn:
            await fail_delivery(conn, job.id, reason)
        self.bot.services.metrics.ended(job.kind, "failed")
        if told is not None:
            with contextlib.suppress(discord.HTTPException):
                channel = await self._channel(job.channel_id)
                await channel.send(told)

    async def _channel(self, channel_id: int):
        return self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)

    async def _post_failure(self, job_id: int, status: str, error: str) -> None:
        async with self.bot.services.db.acquire() as conn:
            if not await finish_job(conn, job_id, status, error or status):
                return
            job = await get_job(conn, job_id)
        self.bot.services.metrics.ended(job.kind, status)
        await self.bot.services.dispatch_waiting(job.member_id)
        if status == "cancelled" or job.channel_id is None:
            return
        channel = await self._channel(job.channel_id)
        await with_retries(lambda: channel.send(failure_text(job, error)), f"job {job_id}")
        await clear_status(self.bot, job)


async def post_result(bot, job: Job, nonce: str | None = None,
                      channel: discord.abc.Messageable | None = None) -> discord.Message:
    """A finished job as an ordinary channel message with its buttons: a grid, or for an
    upscale the one image. Its file fits the guild's upload limit (re-encoded as a WebP if
    not), and flagged images go as the server's image policy says (bot/image_policy.py).
    A nonce makes Discord return the first message on a repeat.
    channel: where to post it (/show's), else the job's own channel."""
    upscale = job.kind == "upscale"
    channel = channel or bot.get_channel(job.channel_id) or await bot.fetch_channel(
        job.channel_id)
    async with bot.services.db.acquire() as conn:
        images = await job_images(conn, job.id)
    judgement = await image_policy.judge(bot.services.db, channel, images)
    file = await _result_file(bot, job, images, judgement)
    view = image_view(job.id, 1, upscaled=True) if upscale else grid_view(job.id)
    message = await channel.send(status_text(job), file=file,
                                 view=None if upscale and judgement.blocks else view,
                                 nonce=nonce)
    await image_policy.log_judgement(bot.services.db, job, channel, judgement)
    return message


async def _result_file(bot, job: Job, images, judgement) -> discord.File:
    upscale, limit = job.kind == "upscale", upload_limit(bot, job.guild_id)
    name = f"dreamloop-{job.id}-2x.png" if upscale else f"dreamloop-{job.id}.webp"
    if judgement.blocks:
        if upscale:
            return image_policy.held_back_file(images[0], name)
        data = await image_policy.held_back_grid(bot.services.blobs, images, limit)
        return discord.File(io.BytesIO(data), name)
    key = image_key(job.id, 1) if upscale else grid_key(job.id)
    data = await asyncio.to_thread(bot.services.blobs.get, key)
    return await image_file(data, judgement.filename(name), limit)


def _finished_ms(entry_id: str) -> int:
    """When the worker reported the result: a stream entry's id is its time in epoch ms."""
    return int(entry_id.split("-")[0])
