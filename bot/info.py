"""/info: your running and queued jobs, where they stand, and what you have used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
from discord import app_commands
from discord.ext import commands

from db.jobs import member_active_jobs, member_usage, queue_position


class Info(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    async def info(self, interaction: discord.Interaction) -> None:
        """Your running and queued jobs, and your usage today."""
        async with self.bot.services.db.acquire() as conn:
            jobs = await member_active_jobs(conn, interaction.user.id)
            positions = {job.id: await queue_position(conn, job.id) for job in jobs}
            usage = await member_usage(conn, interaction.user.id,
                                       datetime.now(UTC) - timedelta(days=1))
        lines = [_describe(job, positions[job.id]) for job in jobs] or ["No jobs in the queue."]
        lines.append(f"Last 24 hours: {usage.jobs} job(s), {usage.gpu_ms / 1000:.1f} GPU-seconds.")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


def _describe(job, position: int | None) -> str:
    prompt = discord.utils.escape_markdown(job.request.prompt[:80])
    where = "running" if job.status == "running" else f"queued, #{position} in line"
    return f"Job {job.id} ({job.kind}, {job.lane}): {where} — {prompt}"
