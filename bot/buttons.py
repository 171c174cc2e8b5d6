"""The buttons. Each is a DynamicItem: its custom_id ("dl:u:{job}:{slot}") carries all it
needs, so every button on every old message still works after a restart (Discord allows
100 characters per custom_id, 5 buttons a row, 5 rows).

On a grid: U1–U4 take an image, V1–V4 vary one, 🔄 draws the prompt again. On a single
image: Vary (Subtle), Vary (Strong), Upscale 2×, 👍, 👎, ❤.
"""

from __future__ import annotations

import re

import discord

from bot import actions, image_policy
from bot.allowed_channels import channel_refused
from bot.bans import refused_here
from bot.errors import answers_failures
from generation.contract import JobKind

# action → (label or emoji, row, feedback kind); the grid's slot buttons
GRID_ACTIONS = {"u": ("U{slot}", 0, "upscale_pick"), "v": ("V{slot}", 1, "variation_pick")}
# action → (label, emoji, feedback kind); a single image's buttons
IMAGE_ACTIONS = {"vs": ("Vary (Subtle)", None, "vary_subtle"),
                 "vg": ("Vary (Strong)", None, "vary_strong"),
                 "up": ("Upscale 2×", None, "upscale_2x"),
                 "tu": (None, "👍", "thumbs_up"), "td": (None, "👎", "thumbs_down"),
                 "fv": (None, "❤", "favourite")}


def grid_view(job_id: int) -> discord.ui.View:
    """U1 U2 U3 U4 🔄 on the first row, V1 V2 V3 V4 on the second."""
    view = discord.ui.View(timeout=None)
    for slot in range(1, 5):
        view.add_item(GridButton("u", job_id, slot))
    view.add_item(RerollButton(job_id))
    for slot in range(1, 5):
        view.add_item(GridButton("v", job_id, slot))
    return view


def image_view(job_id: int, slot: int, upscaled: bool = False) -> discord.ui.View:
    """A single image's buttons; an upscaled image is not offered Upscale 2× again (twice
    would pass the largest side a job may have)."""
    view = discord.ui.View(timeout=None)
    for action in IMAGE_ACTIONS:
        if not (upscaled and action == "up"):
            view.add_item(ImageButton(action, job_id, slot))
    return view



async def click_refused(interaction: discord.Interaction) -> bool:
    """Tell the clicker why the click does nothing, if it does nothing: too many clicks, a
    double click, a banned member, a channel the server took off its list."""
    # The click limit first: it is one Redis call, and a flood must not reach PostgreSQL.
    refusal = await actions.click_refused(interaction)
    if refusal:
        await interaction.followup.send(refusal, ephemeral=True)
        return True
    return await refused_here(interaction, "a button") or await channel_refused(
        interaction, "This message's buttons work")

class _SlotButton:
    """A button about image `slot` of a job, with custom_id "dl:{action}:{job}:{slot}".
    Mixed into each DynamicItem class (each needs a template of its own)."""

    def __init__(self, action: str, job_id: int, slot: int, **button):
        super().__init__(discord.ui.Button(style=discord.ButtonStyle.secondary,
                                           custom_id=f"dl:{action}:{job_id}:{slot}", **button))
        self.action, self.job_id, self.slot = action, job_id, slot

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(match["action"], int(match["job"]), int(match["slot"]))

    async def _find(self, interaction: discord.Interaction):
        """Acknowledge, then the job and image; (None, None) after telling the clicker."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if await click_refused(interaction):
            return None, None
        job, image = await actions.find(interaction, self.job_id, self.slot)
        if job is None or image is None:
            await interaction.followup.send("That image is gone.", ephemeral=True)
            return None, None
        return job, image


class GridButton(_SlotButton, discord.ui.DynamicItem[discord.ui.Button],
                 template=r"dl:(?P<action>[uv]):(?P<job>\d+):(?P<slot>[1-4])"):
    def __init__(self, action: str, job_id: int, slot: int):
        label, row, _ = GRID_ACTIONS[action]
        super().__init__(action, job_id, slot, label=label.format(slot=slot), row=row)

    @answers_failures
    @actions.explain_limits
    async def callback(self, interaction: discord.Interaction) -> None:
        job, image = await self._find(interaction)
        if job is None:
            return
        judgement = await actions.judge_image(interaction, job, image)
        if judgement.blocks:  # its tile was held back: neither taken nor varied
            await interaction.followup.send(image_policy.HELD_BACK, ephemeral=True)
            return
        await actions.record(interaction, GRID_ACTIONS[self.action][2], job, image, self.slot)
        if self.action == "u":
            # Taking an image costs no GPU work: it is the grid's image, full size.
            await actions.take_image(interaction, job, image, image_view(job.id, self.slot),
                                     judgement)
            await interaction.followup.send(f"Image #{self.slot} is below.", ephemeral=True)
            return
        new_job = await actions.queue_variation(interaction, job, image, "strong")
        await interaction.followup.send(
            f"Varying image #{self.slot}: job {new_job.id} queued.", ephemeral=True)


class RerollButton(discord.ui.DynamicItem[discord.ui.Button], template=r"dl:r:(?P<job>\d+)"):
    def __init__(self, job_id: int):
        super().__init__(discord.ui.Button(emoji="🔄", row=0, custom_id=f"dl:r:{job_id}",
                                           style=discord.ButtonStyle.secondary))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match: re.Match):
        return cls(int(match["job"]))

    @answers_failures
    @actions.explain_limits
    async def callback(self, interaction: discord.Interaction) -> None:
        """The same prompt with new seeds: the whole grid lost."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        if await click_refused(interaction):
            return
        job, _ = await actions.find(interaction, self.job_id, None)
        if job is None:
            await interaction.followup.send("That job is gone.", ephemeral=True)
            return
        await actions.record(interaction, "reroll", job)
        request = actions.clicker_owns(job.request, interaction, kind=JobKind.REROLL)
        new_job = await actions.start_follow_up(interaction, request, job)
        await interaction.followup.send(f"Drawing it again: job {new_job.id} queued.",
                                        ephemeral=True)


class ImageButton(_SlotButton, discord.ui.DynamicItem[discord.ui.Button],
                  template=r"dl:(?P<action>vs|vg|up|tu|td|fv):(?P<job>\d+):(?P<slot>[1-4])"):
    def __init__(self, action: str, job_id: int, slot: int):
        label, emoji, _ = IMAGE_ACTIONS[action]
        super().__init__(action, job_id, slot, label=label, emoji=emoji)

    @answers_failures
    @actions.explain_limits
    async def callback(self, interaction: discord.Interaction) -> None:
        job, image = await self._find(interaction)
        if job is None:
            return
        await actions.record(interaction, IMAGE_ACTIONS[self.action][2], job, image, self.slot)
        await interaction.followup.send(await self._act(interaction, job, image),
                                        ephemeral=True)

    async def _act(self, interaction, job, image) -> str:
        if self.action in ("vs", "vg"):
            strength = "subtle" if self.action == "vs" else "strong"
            new_job = await actions.queue_variation(interaction, job, image, strength)
            return f"Varying ({strength}): job {new_job.id} queued."
        if self.action == "up":
            new_job = await actions.queue_upscale(interaction, job, image)
            return f"Upscaling 2×: job {new_job.id} queued."
        return "Noted, thank you."


BUTTONS = (GridButton, RerollButton, ImageButton)
