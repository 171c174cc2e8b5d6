"""/info: your running and queued jobs, where they stand, and what you have used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import answer
from db.jobs import Job, member_active_jobs, member_usage, queue_position, typical_gpu_ms


class Info(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    async def info(self, interaction: discord.Interaction) -> None:
        """Your running and queued jobs, and your usage today."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        async with self.bot.services.db.acquire() as conn:
            jobs = await member_active_jobs(conn, interaction.user.id)
            queue = self.bot.services.queue
            lines = [await _describe(conn, queue, job) for job in jobs] or [
                "No jobs in the queue."]
            usage = await member_usage(conn, interaction.user.id,
                                       datetime.now(UTC) - timedelta(days=1))
        lines.append(f"Last 24 hours: {usage.jobs} job(s), {usage.gpu_ms / 1000:.1f} GPU-seconds.")
        await answer(interaction, "\n".join(lines))


async def _describe(conn, queue, job: Job) -> str:
    prompt = discord.utils.escape_markdown(job.request.prompt[:80])
    return (f"Job {job.id} ({job.kind}, {job.lane}): {await _where(conn, job)}"
            f"{await _unserved(queue, job)} — {prompt}")


async def _unserved(queue, job: Job) -> str:
    """A waiting job's model that no worker serves now (none started, or it stopped)."""
    if job.status == "running" or await queue.is_served(job.model):
        return ""
    return f"; no worker serves {job.model} now: it starts when one does"


async def _where(conn, job: Job) -> str:
    if job.status == "running":
        return "running"
    if job.dispatched_at is None:
        return "waiting for its turn (after your running jobs, and in turn with other members)"
    position = await queue_position(conn, job.id)
    typical_ms = await typical_gpu_ms(conn, job.model)
    if position is None or typical_ms is None:
        return f"queued, #{position or 1} in line"
    # One GPU's view: with several workers on the model it starts sooner.
    return f"queued, #{position} in line, starts in about {(position - 1) * typical_ms // 1000} s"
