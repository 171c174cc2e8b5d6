"""/show: post any finished job again, with fresh buttons."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery import post_result
from db.jobs import get_job


class Show(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    @app_commands.describe(job="the job's number")
    async def show(self, interaction: discord.Interaction, job: int) -> None:
        """Post a finished job's images again, with their buttons."""
        async with self.bot.services.db.acquire() as conn:
            found = await get_job(conn, job)
        if found is None or found.status != "succeeded":
            await interaction.response.send_message(
                f"Job {job} has no finished images to show.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True)
        await post_result(self.bot, found)
        await interaction.followup.send(f"Job {job} is posted below.", ephemeral=True)
