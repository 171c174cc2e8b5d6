"""/models: the model versions A/B routing splits traffic between, and their weights.

    /models list                          versions, weights, share of traffic now, served
    /models weight version:NAME weight:W  set a version's weight (Manage Server only)

A version's traffic weight is one number shared by every server the bot is in, so a server's
Manage Server permission alone is not enough to change it: the server must also be one of
DREAMLOOP_ADMIN_GUILDS, or, when that is unset, the only server the bot is in.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.services import WeightRefused, check_traffic_weight, weights_refusal
from db.model_versions import ModelVersion, list_model_versions, set_traffic_weight
from flywheel.routing import traffic_shares

SHOWN = 20  # versions in the embed; `dreamloop models` lists them all
CHOICES = 25  # Discord shows at most 25 autocomplete choices


class ModelsCommand(commands.GroupCog, group_name="models",
                    group_description="Model versions and their share of the traffic"):
    def __init__(self, bot):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="list")
    async def list_versions(self, interaction: discord.Interaction) -> None:
        """The model versions, their traffic weights and their share of jobs now."""
        await interaction.response.send_message(embed=versions_embed(await self._rows()),
                                                ephemeral=True)

    @app_commands.command(name="weight")
    @app_commands.describe(version="the model version (see /models list)",
                           weight="its traffic weight; 0 takes it out of routing")
    async def weight(self, interaction: discord.Interaction, version: str,
                     weight: app_commands.Range[float, 0, None]) -> None:
        """Set a model version's traffic weight (Manage Server only)."""
        # Discord's default member permissions apply to a whole top-level command (and
        # /models list is for everyone), and a server's admins can change them anyway: so the
        # Manage Server check is made here, in our code, as /settings server does.
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            await interaction.response.send_message(
                "Only members with the Manage Server permission can set traffic weights; "
                "/models list shows them.", ephemeral=True)
            return
        services = self.bot.services
        refusal = weights_refusal(interaction.guild_id, services.admin_guilds,
                                  len(self.bot.guilds))
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        # Discord's client keeps a number option above its min_value, but the bot checks the
        # value itself all the same (and the CLI shares the check).
        async with services.db.acquire() as conn:
            try:
                old = await check_traffic_weight(conn, services.queue, version, weight)
            except WeightRefused as error:
                # Discord refuses a message over 2000 characters (the list of versions an
                # unknown name gets could reach that).
                await interaction.response.send_message(f"Not set: {error}."[:2000],
                                                        ephemeral=True)
                return
            await set_traffic_weight(conn, version, weight)
        await interaction.response.send_message(
            f"**{escape_markdown(version)}** now has traffic weight {weight:g} "
            f"(was {old.traffic_weight:g}).", embed=versions_embed(await self._rows()),
            ephemeral=True)

    @weight.autocomplete("version")
    async def version_names(self, interaction: discord.Interaction,
                            typed: str) -> list[app_commands.Choice[str]]:
        # Discord allows 25 choices and waits 3 s for them: one short query.
        async with self.bot.services.db.acquire() as conn:
            names = [v.name for v in await list_model_versions(conn)]
        # A choice's name and value may be 100 characters at most.
        return [app_commands.Choice(name=name, value=name) for name in names
                if typed.lower() in name.lower() and len(name) <= 100][:CHOICES]

    async def _rows(self) -> list[tuple[ModelVersion, bool]]:
        """Every version with whether a worker serves its model now."""
        services = self.bot.services
        async with services.db.acquire() as conn:
            versions = await list_model_versions(conn)
        return [(v, await services.queue.is_served(v.model)) for v in versions]


def versions_embed(rows: list[tuple[ModelVersion, bool]]) -> discord.Embed:
    embed = discord.Embed(title="Model versions", colour=discord.Colour.blurple())
    lines = [f"**{escape_markdown(v.name)}** ({escape_markdown(v.model)}) — weight "
             f"{v.traffic_weight:g}, {100 * share:.0f}% of traffic now, "
             f"{'served' if served else 'not served'}"
             for (v, served), share in zip(rows, traffic_shares(rows), strict=True)]
    if len(lines) > SHOWN:
        lines[SHOWN:] = [f"… and {len(lines) - SHOWN} more (`dreamloop models` lists all)"]
    # Discord refuses an embed description over 4096 characters (long names could get there).
    embed.description = "\n".join(lines)[:4096] or (
        "No model versions yet: add one with `dreamloop models add NAME --model MODEL`.")
    embed.set_footer(text="A job nobody chose a model for goes to a version a worker serves, "
                          "drawn by weight.")
    return embed
