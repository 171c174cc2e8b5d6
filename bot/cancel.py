"""/cancel: stop one of your own queued or running jobs."""

from __future__ import annotations

import asyncio
import contextlib

import discord
from discord import app_commands
from discord.ext import commands

from bot.cancel_flags import CancelFlags
from bot.errors import answer
from bot.status import status_message, status_text
from db.jobs import cancel_job, get_job


class Cancel(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self.flags = CancelFlags(bot.services)
        self._flagging: asyncio.Task | None = None

    async def cog_load(self) -> None:
        if self.bot.deliver:  # a serving bot, not `dreamloop sync-commands`
            self._flagging = asyncio.create_task(self.flags.run())

    async def cog_unload(self) -> None:
        if self._flagging is not None:
            self._flagging.cancel()

    @app_commands.command()
    @app_commands.describe(job="the job's number, as /imagine or /info shows it")
    async def cancel(self, interaction: discord.Interaction, job: int) -> None:
        """Cancel one of your queued or running jobs."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        async with self.bot.services.db.acquire() as conn:
            cancelled = await cancel_job(conn, job, interaction.user.id)
        if not cancelled:
            await answer(interaction, f"Job {job} is not one of your queued or running jobs.")
            return
        async with self.bot.services.db.acquire() as conn:
            self.bot.services.metrics.ended((await get_job(conn, job)).kind, "cancelled")
        # The worker checks this flag between steps (or before starting) and stops.
        if await self.flags.send(job):
            await answer(interaction, f"Job {job} is cancelled.")
        else:
            await answer(interaction, f"Job {job} is cancelled; the job queue is unreachable "
                         "right now, so its GPU stops drawing it as soon as the queue is back "
                         "(nothing will be posted).")
        await self.bot.services.dispatch_waiting(interaction.user.id)  # its slot is free
        await self.show_cancelled(job)

    async def show_cancelled(self, job_id: int) -> None:
        """Its status message says so, instead of stopping at its last "(NN%)"."""
        async with self.bot.services.db.acquire() as conn:
            job = await get_job(conn, job_id)
        message = status_message(self.bot, job)
        if message is not None:
            with contextlib.suppress(discord.HTTPException):  # deleted, or no access
                await message.edit(content=f"{status_text(job)} — cancelled", attachments=[])
