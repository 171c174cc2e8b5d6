"""/rate: two images made for one prompt, side by side; the member votes A, B, Tie or Both
bad, and the next pair replaces it in the same (ephemeral) message.

Which pair comes next is flywheel/rate_pairs.py's choice; a vote on a real pair becomes an
explicit comparison, a vote on a control only measures the member (db/rate_pairs.py). The
buttons carry only the shown pair's id ("dl:rate:{pair}:{answer}"): which image is the
decoy of a control stays in the database, where a curious member cannot read it.
"""

from __future__ import annotations

import asyncio
import io
import random
import re

import discord
from discord import app_commands
from discord.ext import commands

from bot.bans import refused_here
from bot.click_guard import click_refusal
from bot.errors import answers_failures
from bot.status import with_prompt
from db.rate_pairs import ShownPair, Vote, next_pair, record_vote
from generation.images import encode_grid, make_pair, open_image

# button answer → (label, the comparison's label)
ANSWERS = {"a": ("A", "a"), "b": ("B", "b"), "tie": ("Tie", "tie"),
           "bad": ("Both bad", "both_bad")}
NOTHING_TO_RATE = ("There is nothing new for you to rate right now: every pair of images made "
                   "for one prompt has your vote. Come back after more /imagine.")
_RNG = random.SystemRandom()


class Rate(commands.Cog):
    def __init__(self, bot):
        self.bot = bot

    @app_commands.command()
    async def rate(self, interaction: discord.Interaction) -> None:
        """Vote for the better of two images made for one prompt."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if await refused_here(interaction, "/rate"):
            return
        async with self.bot.services.db.acquire() as conn:
            shown = await next_pair(conn, interaction.user.id, _RNG)
        if shown is None:
            await interaction.followup.send(NOTHING_TO_RATE, ephemeral=True)
            return
        await interaction.followup.send(**await pair_message(self.bot.services, shown),
                                        ephemeral=True)


async def pair_message(services, shown: ShownPair) -> dict:
    """The message's content, picture and buttons for a shown pair."""
    picture = await asyncio.to_thread(_picture, services.blobs, shown)
    return {"content": with_prompt(shown.prompt, "**Which image is better for:** ",
                                   "\nA is on the left, B on the right."),
            "file": discord.File(io.BytesIO(picture), f"rate-{shown.id}.webp"),
            "view": answer_view(shown.id)}


def _picture(blobs, shown: ShownPair) -> bytes:
    left, right = (open_image(blobs.get(key))
                   for key in (shown.left_blob_key, shown.right_blob_key))
    return encode_grid(make_pair(left, right))


def answer_view(pair_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for answer in ANSWERS:
        view.add_item(AnswerButton(pair_id, answer))
    return view


class AnswerButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"dl:rate:(?P<pair>\d+):(?P<answer>a|b|tie|bad)"):
    def __init__(self, pair_id: int, answer: str):
        style = (discord.ButtonStyle.primary if answer in ("a", "b")
                 else discord.ButtonStyle.secondary)
        super().__init__(discord.ui.Button(label=ANSWERS[answer][0], style=style,
                                           custom_id=f"dl:rate:{pair_id}:{answer}"))
        self.pair_id, self.answer = pair_id, answer

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["pair"]), match["answer"])

    @answers_failures
    async def callback(self, interaction: discord.Interaction) -> None:
        # A deferred update: the next pair replaces this one in the same message.
        await interaction.response.defer()
        # The same per-member click limit as the grid's buttons: votes are not free either.
        refusal = await click_refusal(interaction)
        if refusal:
            await interaction.followup.send(refusal, ephemeral=True)
            return
        if await refused_here(interaction, "a /rate vote"):
            return
        services, member_id = interaction.client.services, interaction.user.id
        async with services.db.acquire() as conn:
            vote = await record_vote(conn, self.pair_id, member_id, ANSWERS[self.answer][1],
                                     interaction.id)
            shown = None if vote is Vote.NOT_THEIRS else await next_pair(conn, member_id, _RNG)
        if vote is Vote.COUNTED:
            services.metrics.votes.labels("vote").inc()
        if vote is Vote.NOT_THEIRS:
            await interaction.followup.send("That pair was shown to someone else: use /rate "
                                            "for your own.", ephemeral=True)
            return
        if shown is None:
            await interaction.edit_original_response(content=NOTHING_TO_RATE, attachments=[],
                                                     view=None)
            return
        await interaction.edit_original_response(**_as_edit(await pair_message(services,
                                                                                 shown)))


def _as_edit(message: dict) -> dict:
    """A message's parts as edit_original_response takes them (files are attachments)."""
    return {"content": message["content"], "attachments": [message["file"]],
            "view": message["view"]}
