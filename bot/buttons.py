"""The grid's buttons: U1–U4 take an image, V1–V4 vary one, 🔄 draws the prompt again.

Each is a DynamicItem: its custom_id ("dl:u:{job}:{slot}") carries everything it needs,
so every button on every old message still works after a restart (Discord allows 100
characters per custom_id, 5 buttons a row, 5 rows).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import re

import discord

from bot.services import new_seed
from db.feedback import FeedbackEvent, record_feedback
from db.images import StoredImage, get_image
from db.jobs import get_job
from generation.contract import VARIATION_STRENGTH, JobKind


def grid_view(job_id: int) -> discord.ui.View:
    """U1 U2 U3 U4 🔄 on the first row, V1 V2 V3 V4 on the second."""
    view = discord.ui.View(timeout=None)
    for slot in range(1, 5):
        view.add_item(TakeButton(job_id, slot))
    view.add_item(RerollButton(job_id))
    for slot in range(1, 5):
        view.add_item(VaryButton(job_id, slot))
    return view


class _GridButton:
    """What U and V buttons share; mixed into DynamicItem (which needs a template each)."""

    action = ""
    feedback = ""

    def __init__(self, job_id: int, slot: int, label: str, row: int):
        super().__init__(discord.ui.Button(
            label=label, row=row, custom_id=f"dl:{self.action}:{job_id}:{slot}",
            style=discord.ButtonStyle.secondary))
        self.job_id, self.slot = job_id, slot

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["job"]), int(match["slot"]))

    async def _record(self, interaction: discord.Interaction, image: StoredImage | None) -> None:
        event = FeedbackEvent(
            member_id=interaction.user.id, kind=self.feedback, job_id=self.job_id,
            image_id=image.id if image else None, shown_slot=self.slot if image else None,
            shown_at=interaction.message.created_at, interaction_id=interaction.id)
        async with interaction.client.services.db.acquire() as conn:
            await record_feedback(conn, event)

    async def _image(self, interaction: discord.Interaction) -> StoredImage | None:
        async with interaction.client.services.db.acquire() as conn:
            return await get_image(conn, self.job_id, self.slot)


class TakeButton(_GridButton, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"dl:u:(?P<job>\d+):(?P<slot>[1-4])"):
    action, feedback = "u", "upscale_pick"

    def __init__(self, job_id: int, slot: int):
        super().__init__(job_id, slot, f"U{slot}", row=0)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Post image n full size: no GPU work, and a clean signal of which one was wanted."""
        await interaction.response.defer(thinking=False)
        image = await self._image(interaction)
        if image is None:
            await interaction.followup.send("That image is gone.", ephemeral=True)
            return
        await self._record(interaction, image)
        data = await asyncio.to_thread(interaction.client.services.blobs.get, image.blob_key)
        await interaction.channel.send(
            f"Image #{self.slot} — {interaction.user.mention}",
            file=discord.File(io.BytesIO(data), f"dreamloop-{self.job_id}-{self.slot}.png"))


class VaryButton(_GridButton, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"dl:v:(?P<job>\d+):(?P<slot>[1-4])"):
    action, feedback = "v", "variation_pick"

    def __init__(self, job_id: int, slot: int):
        super().__init__(job_id, slot, f"V{slot}", row=1)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Queue four variations of image n; the clicker owns the new job."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        image = await self._image(interaction)
        parent = await _job(interaction, self.job_id)
        if image is None or parent is None:
            await interaction.followup.send("That image is gone.", ephemeral=True)
            return
        await self._record(interaction, image)
        request = dataclasses.replace(
            parent.request, kind=JobKind.VARIATION, parent_image=image.blob_key,
            strength=VARIATION_STRENGTH["strong"], seed=new_seed(), user_id=interaction.user.id,
            channel_id=interaction.channel_id, guild_id=interaction.guild_id)
        job, _ = await interaction.client.services.start_job(request, interaction.id, image.id)
        await interaction.followup.send(f"Varying image #{self.slot}: job {job.id} queued.",
                                        ephemeral=True)


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=r"dl:r:(?P<job>\d+)"):
    def __init__(self, job_id: int):
        super().__init__(discord.ui.Button(emoji="🔄", row=0, custom_id=f"dl:r:{job_id}",
                                           style=discord.ButtonStyle.secondary))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """The same prompt with new seeds: the whole grid lost."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        parent = await _job(interaction, self.job_id)
        if parent is None:
            await interaction.followup.send("That job is gone.", ephemeral=True)
            return
        event = FeedbackEvent(member_id=interaction.user.id, kind="reroll", job_id=self.job_id,
                              shown_at=interaction.message.created_at,
                              interaction_id=interaction.id)
        async with interaction.client.services.db.acquire() as conn:
            await record_feedback(conn, event)
        request = dataclasses.replace(parent.request, kind=JobKind.REROLL, seed=new_seed(),
                                      user_id=interaction.user.id,
                                      channel_id=interaction.channel_id,
                                      guild_id=interaction.guild_id)
        job, _ = await interaction.client.services.start_job(request, interaction.id)
        await interaction.followup.send(f"Drawing it again: job {job.id} queued.",
                                        ephemeral=True)


async def _job(interaction: discord.Interaction, job_id: int):
    async with interaction.client.services.db.acquire() as conn:
        return await get_job(conn, job_id)


GRID_BUTTONS = (TakeButton, VaryButton, RerollButton)
