"""Live progress: each job's status message shows "(NN%)" and a blurry preview while the
GPU works (Midjourney's way), edited at most every 1.5 s.

One pattern subscription serves every job; workers publish at most one event per job per
interval, and always the last step.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time

import asyncpg
import discord
import redis.asyncio as redis

from bot.status import status_text
from bot.supervisor import stop_if_cancelled
from db.jobs import jobs_showing_progress, mark_started

log = logging.getLogger(__name__)
EDIT_INTERVAL_S = 1.5
REMEMBERED_STARTS = 10_000  # job ids already marked running, newest kept


class ProgressRelay:
    def __init__(self, bot):
        self.bot = bot
        self.watching: dict[str, tuple[discord.Message, str]] = {}  # job id → (message, text)
        self.last_edit: dict[str, float] = {}
        self.started: dict[str, None] = {}  # insertion-ordered, so the oldest go first
        # Each job's edits run in a task of their own: one slow edit (a busy channel, a
        # rate-limited message) never holds up another job's progress. A job's newest event
        # waits in `latest` while its edit is under way; older ones are dropped.
        self.latest: dict[str, dict] = {}
        self.editing: dict[str, asyncio.Task] = {}

    def watch(self, job_id: int, message: discord.Message | discord.PartialMessage,
              text: str) -> None:
        self.watching[str(job_id)] = (message, text)

    def forget(self, job_id: int) -> discord.Message | discord.PartialMessage | None:
        """Stop showing a job's progress (its result is posted); its status message."""
        self.latest.pop(str(job_id), None)
        self.last_edit.pop(str(job_id), None)
        watched = self.watching.pop(str(job_id), None)
        return watched[0] if watched else None

    async def run(self) -> None:
        await self._watch_again()
        while True:
            stop_if_cancelled()
            try:
                await self._listen()
            except (redis.RedisError, OSError) as error:
                log.warning("progress: Redis is unreachable (%s); retrying in 1 s", error)
                await asyncio.sleep(1)

    async def _watch_again(self) -> None:
        """After a restart, the unfinished jobs' status messages in this bot's guilds (a
        shard sees only its own) go on showing progress."""
        await self.bot.wait_until_ready()
        async with self.bot.services.db.acquire() as conn:
            jobs = await jobs_showing_progress(conn)
        for job in jobs:
            if job.guild_id is None or self.bot.get_guild(job.guild_id) is None:
                continue
            channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
            self.watch(job.id, channel.get_partial_message(job.status_message_id),
                       status_text(job))

    async def _listen(self) -> None:
        queue = self.bot.services.queue
        async with queue.redis.pubsub() as pubsub:
            await pubsub.psubscribe(queue.keys.progress("*"))
            async for message in pubsub.listen():
                stop_if_cancelled()
                if message["type"] != "pmessage":
                    continue
                job_id = message["channel"].rsplit(":", 1)[-1]
                if job_id not in self.started and job_id.isdigit():
                    await self._mark_started(job_id)
                if job_id in self.watching:
                    self._edit_soon(job_id, json.loads(message["data"]))

    def _edit_soon(self, job_id: str, event: dict) -> None:
        self.latest[job_id] = event
        if job_id not in self.editing:
            self.editing[job_id] = asyncio.create_task(self._edit_job(job_id))

    async def _edit_job(self, job_id: str) -> None:
        """Show the job's newest event, again while a newer one came meanwhile."""
        try:
            while job_id in self.latest and job_id in self.watching:
                await self._show(job_id, self.latest.pop(job_id))
        except Exception:  # an edit lost in transit: the next event tries again
            log.exception("job %s: progress edit failed", job_id)
        finally:
            del self.editing[job_id]

    async def _mark_started(self, job_id: str) -> None:
        """Its first progress event: the job is running (what /info and the caps read)."""
        self.started[job_id] = None
        if len(self.started) > REMEMBERED_STARTS:
            del self.started[next(iter(self.started))]
        try:
            async with self.bot.services.db.acquire() as conn:
                await mark_started(conn, int(job_id))
        except (asyncpg.PostgresError, OSError) as error:  # shown as queued a little longer
            log.warning("job %s: could not mark it running (%s)", job_id, error)

    async def _show(self, job_id: str, event: dict) -> None:
        final = event["step"] >= event["total"]
        if not final and time.monotonic() - self.last_edit.get(job_id, 0) < EDIT_INTERVAL_S:
            return
        self.last_edit[job_id] = time.monotonic()
        message, text = self.watching[job_id]
        if final:
            del self.watching[job_id]
            self.last_edit.pop(job_id, None)
        percent = 100 * event["step"] // event["total"]
        preview = [discord.File(io.BytesIO(base64.b64decode(event["preview"])), "preview.webp")
                   ] if event.get("preview") else []
        try:
            await message.edit(content=f"{text} — ({percent}%)", attachments=preview)
        except discord.HTTPException as error:  # deleted, or no access: stop watching it
            log.info("job %s: progress edit refused (%s)", job_id, error)
            self.watching.pop(job_id, None)
