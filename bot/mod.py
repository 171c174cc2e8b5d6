"""/mod: a server's admins stop and allow members (ban, unban, bans) and read the
moderation log (log). Manage Server only, checked here in our code: default_permissions
is only Discord's default, which a server's admins can change for anyone.

A ban holds in this server only, and cancels the member's queued and running jobs here
through the /cancel path (PostgreSQL first, then the workers' cancel flags).
"""

from __future__ import annotations

import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.admins import refused_unless_admin
from bot.errors import answer
from bot.mod_log import log_text
from bot.status import CONTENT_LIMIT, shorten
from db.guild_bans import add_ban, list_bans, lock_member, remove_ban
from db.jobs import cancel_guild_jobs
from db.moderation_log import recent_actions, record_action

REASON_LIMIT = 200  # characters: a reason is shown in /mod bans and /mod log
LOG_LIMIT = 50  # entries /mod log reads at most
_ACTION = re.compile(r"[a-z_]{1,40}")  # as the moderation log's check constraint


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Mod(commands.GroupCog, group_name="mod",
          group_description="Stop or allow members here, and read the moderation log"):
    def __init__(self, bot):
        self.bot = bot
        super().__init__()

    @app_commands.command()
    @app_commands.describe(member="who may no longer use dreamloop here",
                           reason="why (shown in /mod bans and /mod log)")
    async def ban(self, interaction: discord.Interaction, member: discord.User,
                  reason: str | None = None) -> None:
        """Stop a member using dreamloop here; their waiting and running jobs are cancelled."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        if await _refused(interaction):
            return
        refusal = self._ban_refusal(interaction, member, reason)
        if refusal:
            await answer(interaction, refusal)
            return
        cancelled = await self._ban(interaction, member.id, reason)
        if cancelled is None:
            await answer(interaction, f"{member.mention} is already banned here.")
            return
        await self._stop(cancelled)
        jobs = (f"; cancelled their job(s) {', '.join(map(str, cancelled))}" if cancelled
                else "; they had no jobs waiting or running here")
        await answer(interaction, f"{member.mention} can no longer use dreamloop here{jobs}. "
                                  "/mod unban lets them again.")

    @app_commands.command()
    @app_commands.describe(member="who may use dreamloop here again")
    async def unban(self, interaction: discord.Interaction, member: discord.User) -> None:
        """Let a banned member use dreamloop here again."""
        await interaction.response.defer(ephemeral=True)
        if await _refused(interaction):
            return
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            removed = await remove_ban(conn, interaction.guild_id, member.id)
            if removed:
                await record_action(conn, interaction.guild_id, "unban",
                                    actor_id=interaction.user.id, target_id=member.id)
        await answer(interaction, f"{member.mention} can use dreamloop here again." if removed
                     else f"{member.mention} is not banned here.")

    @app_commands.command()
    async def bans(self, interaction: discord.Interaction) -> None:
        """The members banned from using dreamloop here, newest first."""
        await interaction.response.defer(ephemeral=True)
        if await _refused(interaction):
            return
        async with self.bot.services.db.acquire() as conn:
            bans = await list_bans(conn, interaction.guild_id)
        lines = [f"<@{ban.member_id}> by <@{ban.banned_by}> "
                 f"<t:{int(ban.created_at.timestamp())}:R>"
                 + (f": {discord.utils.escape_markdown(ban.reason)}" if ban.reason else "")
                 for ban in bans]
        await answer(interaction, shorten("\n".join(lines), CONTENT_LIMIT) if lines
                     else "Nobody is banned from using dreamloop here.")

    @app_commands.command(name="log")
    @app_commands.describe(action="only this action, like ban or refused_banned_member",
                           member="only entries about this member",
                           limit=f"how many of the latest entries (1 to {LOG_LIMIT})")
    async def log(self, interaction: discord.Interaction, action: str | None = None,
                  member: discord.User | None = None,
                  limit: app_commands.Range[int, 1, LOG_LIMIT] = 20) -> None:
        """The moderation log: who did what here, and when, newest first."""
        await interaction.response.defer(ephemeral=True)
        if await _refused(interaction):
            return
        refusal = _log_refusal(action)
        if refusal:
            await answer(interaction, refusal)
            return
        async with self.bot.services.db.acquire() as conn:
            entries = await recent_actions(conn, interaction.guild_id, limit, action,
                                           member.id if member else None)
        await answer(interaction, log_text(entries))

    def _ban_refusal(self, interaction: discord.Interaction, member: discord.User,
                     reason: str | None) -> str | None:
        if member.id == interaction.user.id:
            return "You cannot ban yourself."
        if member.id == self.bot.user.id:
            return "dreamloop cannot ban itself; to remove the bot, kick it from the server."
        if reason is not None and len(reason) > REASON_LIMIT:
            return (f"Not banned: the reason is {len(reason)} characters; at most "
                    f"{REASON_LIMIT} are allowed.")
        return None

    async def _ban(self, interaction: discord.Interaction, member_id: int,
                   reason: str | None) -> list[int] | None:
        """Ban and cancel in one transaction, under the member's admission lock: no job of
        theirs is admitted between the two. None when they were banned already."""
        guild_id = interaction.guild_id
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            await lock_member(conn, member_id)
            if not await add_ban(conn, guild_id, member_id, interaction.user.id, reason):
                return None
            cancelled = await cancel_guild_jobs(conn, member_id, guild_id,
                                                "cancelled: its member was banned here")
            await record_action(conn, guild_id, "ban", actor_id=interaction.user.id,
                                target_id=member_id,
                                detail={"reason": reason, "cancelled_jobs": cancelled})
        return cancelled

    async def _stop(self, job_ids: list[int]) -> None:
        """The cancelled jobs' workers stop (cancel flags), their status messages say so,
        and their slots go to other members."""
        cancel = self.bot.get_cog("Cancel")
        for job_id in job_ids:
            await cancel.flags.send(job_id)
            await cancel.show_cancelled(job_id)
        if job_ids:
            await self.bot.services.dispatch_waiting()


def _log_refusal(action: str | None) -> str | None:
    # limit's range is checked with every option (bot/raw_options.py), raw payloads too.
    if action is not None and not _ACTION.fullmatch(action):
        return ("action is one word of lower-case letters and underscores, like ban, unban "
                "or refused_banned_member.")
    return None


async def _refused(interaction: discord.Interaction) -> bool:
    return await refused_unless_admin(interaction, f"use /{interaction.command.qualified_name}")
