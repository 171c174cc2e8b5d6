"""/cancel: stop one of your own queued or running jobs."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from db.jobs import cancel_job


class Cancel(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    @app_commands.describe(job="the job's number, as /imagine or /info shows it")
    async def cancel(self, interaction: discord.Interaction, job: int) -> None:
        """Cancel one of your queued or running jobs."""
        async with self.bot.services.db.acquire() as conn:
            cancelled = await cancel_job(conn, job, interaction.user.id)
        if not cancelled:
            await interaction.response.send_message(
                f"Job {job} is not one of your queued or running jobs.", ephemeral=True)
            return
        # The worker checks this flag between steps (or before starting) and stops.
        await self.bot.services.queue.cancel(str(job))
        await interaction.response.send_message(f"Job {job} is cancelled.", ephemeral=True)
        await self.bot.services.dispatch_waiting(interaction.user.id)  # its slot is free
