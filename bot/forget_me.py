"""/forget-me: a member deletes everything dreamloop holds of them, after confirming.

The confirmation's buttons are DynamicItems whose custom_id names the member, so they work
after a restart, and only that member can press them (an ephemeral message is shown to
them alone, but a forged click could carry its custom_id). The deleting is bot/forget.py.
"""

from __future__ import annotations

import contextlib
import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import answer, answers_failures
from bot.forget import ForgetReport, forget_member
from db.forget import MemberData, member_data
from db.moderation_log import record_action

log = logging.getLogger(__name__)

KEPT = "Nothing was deleted: your data is kept."
NOT_YOURS = "Only the member who asked to be forgotten can press these buttons."


class Forget(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="forget-me")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        """Delete everything this bot holds about you (asks you to confirm first)."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        async with self.bot.services.db.acquire() as conn:
            data = await member_data(conn, interaction.user.id)
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetButton(interaction.user.id, confirm=True))
        view.add_item(ForgetButton(interaction.user.id, confirm=False))
        await interaction.edit_original_response(content=confirmation(data), view=view)


def confirmation(data: MemberData) -> str:
    """Exactly what confirming deletes; it names nothing of theirs but counts."""
    follow_ups = len(data.jobs) - data.own_jobs
    unfinished = sum(1 for job in data.jobs if job.status in ("queued", "running"))
    others = (f", and {follow_ups} variation(s) or re-roll(s) other members made of your "
              "images (they show your work)" if follow_ups else "")
    return (f"This deletes, for good: your {data.own_jobs} job(s) and their "
            f"{data.images} image(s) (the stored files too, and the grids the bot posted), "
            f"your {data.feedback} click(s) and vote(s), {data.comparisons} comparison(s) and "
            f"{data.rate_pairs} /rate pair(s), your settings{others}. {unfinished} "
            "unfinished job(s) are stopped. You are left out of every later dataset export, "
            "and the exports made before are rewritten without you. It cannot be undone.")


class ForgetButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"dl:forget:(?P<choice>yes|no):(?P<member>\d+)"):
    def __init__(self, member_id: int, confirm: bool):
        label, style = (("Confirm: delete my data", discord.ButtonStyle.danger) if confirm
                        else ("Keep my data", discord.ButtonStyle.secondary))
        super().__init__(discord.ui.Button(
            label=label, style=style,
            custom_id=f"dl:forget:{'yes' if confirm else 'no'}:{member_id}"))
        self.member_id, self.confirm = member_id, confirm

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["member"]), match["choice"] == "yes")

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.member_id:
            return True
        await interaction.response.send_message(NOT_YOURS, ephemeral=True)
        if interaction.guild_id is not None:
            async with interaction.client.services.db.acquire() as conn:
                await record_action(conn, interaction.guild_id, "forget_click_refused",
                                    target_id=interaction.user.id,
                                    detail={"rule": "only the member named can confirm"})
        return False

    @answers_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        if not self.confirm:
            await interaction.response.edit_message(content=KEPT, view=None)
            return
        await interaction.response.edit_message(content="Deleting your data…", view=None)
        services = interaction.client.services
        report = await forget_member(services, self.member_id, services.export_salt)
        await delete_posts(interaction.client, report)
        await answer(interaction, f"{report.summary()} You have been forgotten.")


async def delete_posts(bot, report: ForgetReport) -> None:
    """The grids and status messages posted for the deleted jobs: they show the work."""
    for channel_id, message_id in report.messages:
        message = bot.get_partial_messageable(channel_id).get_partial_message(message_id)
        with contextlib.suppress(discord.HTTPException):  # deleted already, or no access
            await message.delete()
