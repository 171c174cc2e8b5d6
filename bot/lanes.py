"""/fast and /relax: the member's default lane, as in Midjourney.

The lane is kept in the member's settings (the same key as `/settings me lane:`), so it
holds across restarts and bot processes. A prompt's --fast, --relax or --turbo wins for
its own job. Relax jobs wait behind fast ones but do not spend the day's fast GPU time.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from db.members import update_settings

SAID = {
    "fast": "Your jobs now run in the fast lane (they spend your fast GPU time for today); "
            "/relax switches back. A prompt's --relax or --turbo still wins for its job.",
    "relax": "Your jobs now run in the relax lane: they wait behind fast jobs but do not "
             "spend your fast GPU time; /fast switches back. A prompt's --fast or --turbo "
             "still wins for its job.",
}


class Lanes(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    async def fast(self, interaction: discord.Interaction) -> None:
        """Run your jobs in the fast lane from now on."""
        await self._set(interaction, "fast")

    @app_commands.command()
    async def relax(self, interaction: discord.Interaction) -> None:
        """Run your jobs in the relax lane from now on (saves your fast GPU time)."""
        await self._set(interaction, "relax")

    async def _set(self, interaction: discord.Interaction, lane: str) -> None:
        async with self.bot.services.db.acquire() as conn:
            await update_settings(conn, "member", interaction.user.id, {"lane": lane})
        await interaction.response.send_message(SAID[lane], ephemeral=True)
