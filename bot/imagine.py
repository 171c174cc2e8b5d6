"""/imagine: a prompt becomes a queued job and a channel message that shows its progress."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.limits import LimitReached
from bot.prompt import PromptError, build_request, parse_prompt
from db.jobs import queue_position, set_message_ids


class Imagine(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    @app_commands.describe(prompt="what to draw; flags such as --ar 16:9 --no text go at the end",
                           model="which model draws it (default: the server's)")
    async def imagine(self, interaction: discord.Interaction, prompt: str,
                      model: str | None = None) -> None:
        """Draw four images from a prompt."""
        services = self.bot.services
        # 1. bad input gets an ephemeral message naming what is wrong, and creates nothing
        try:
            request = build_request(parse_prompt(prompt), services.registry, model=model,
                                    user_id=interaction.user.id, guild_id=interaction.guild_id,
                                    channel_id=interaction.channel_id)
        except PromptError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        # 2. acknowledge within Discord's 3 seconds, then do the work
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            job, created = await services.start_job(request, interaction.id)
        except LimitReached as refusal:
            await interaction.followup.send(str(refusal), ephemeral=True)
            return
        if not created:  # Discord retried the interaction: the job already exists
            await interaction.followup.send(f"Job {job.id} is already queued.", ephemeral=True)
            return
        # 3. the status message is an ordinary channel message: it can be edited after the
        #    15 minutes an interaction token lives
        async with services.db.acquire() as conn:
            position = await queue_position(conn, job.id)
        text = f"**{discord.utils.escape_markdown(request.prompt)}** — {interaction.user.mention}"
        where = (f"queued (#{position or 1})" if job.dispatched_at else
                 f"waiting: {services.limits.max_running} of your jobs are in progress")
        try:
            status = await interaction.channel.send(f"{text} — {where}")
        except discord.HTTPException as error:  # no permission to post here, most often
            await interaction.followup.send(
                f"Job {job.id} is queued, but I cannot post in this channel ({error.text}); "
                "ask an admin to let me send messages and attach files here.", ephemeral=True)
            return
        self.bot.progress.watch(job.id, status, text)
        async with services.db.acquire() as conn:
            await set_message_ids(conn, job.id, status_message_id=status.id)
        lane = "" if job.lane == "fast" else (
            " in the relax lane: today's fast GPU time is spent (it renews at 00:00 UTC)")
        await interaction.followup.send(f"Queued as job {job.id}{lane}, seed {request.seed}.",
                                        ephemeral=True)
