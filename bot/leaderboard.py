"""/leaderboard: the model versions' ratings at a glance, with how far to trust them."""

from __future__ import annotations

import asyncio
import math

import discord
from discord import app_commands
from discord.ext import commands

from db.feedback import leaderboard_rows
from flywheel.leaderboard import SOURCE_NAMES, SOURCES, Leaderboard, build_leaderboard

SHOWN = 10  # versions in the embed
MEDALS = ("🥇", "🥈", "🥉")


class LeaderboardCommand(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command(name="leaderboard")
    @app_commands.describe(source="members' votes from /rate (default), or their U picks")
    @app_commands.choices(source=[app_commands.Choice(name=name, value=source)
                                  for source, name in SOURCE_NAMES.items()])
    async def leaderboard(self, interaction: discord.Interaction,
                          source: str = "explicit") -> None:
        """Which model version the community prefers, with 95% intervals."""
        await interaction.response.defer(thinking=True)
        async with self.bot.services.db.acquire() as conn:
            rows = await leaderboard_rows(conn, SOURCES[source])
        # The bootstrap is CPU work (100 refits): off the event loop.
        board = await asyncio.to_thread(build_leaderboard, source, rows)
        await interaction.followup.send(embed=leaderboard_embed(board))


def leaderboard_embed(board: Leaderboard) -> discord.Embed:
    embed = discord.Embed(title=f"Leaderboard — from {SOURCE_NAMES[board.source]}",
                          colour=discord.Colour.gold())
    lines = [f"{MEDALS[i] if i < 3 else f'`{i + 1}.`'} **{s.version}** — {s.rating:.0f} "
             f"({s.low:.0f}–{s.high:.0f}), {s.battles} battles"
             for i, s in enumerate(board.standings[:SHOWN])]
    embed.description = "\n".join(lines) or "No battles between model versions yet."
    embed.add_field(name="U picks by slot 1–4",
                    value=_bias(board.slot_win_rates, board.position_biased))
    embed.add_field(name="/rate votes for A · B",
                    value=_bias(board.side_win_rates, board.side_biased))
    agreed = "–" if math.isnan(board.agreement) else f"{100 * board.agreement:.0f}%"
    embed.add_field(name="members agree", value=agreed)
    embed.set_footer(text="Bradley–Terry ratings, ties count half; 95% bootstrap intervals")
    return embed


def _bias(rates: tuple[float, ...], biased: bool) -> str:
    shares = " · ".join("–" if math.isnan(r) else f"{100 * r:.0f}%" for r in rates)
    return f"{shares} ({'position-biased' if biased else 'no bias detected'})"
