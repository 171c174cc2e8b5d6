"""A server's image policy: what happens to an image the classifier flagged
(generation/safety.py) wherever the bot posts it: the grid, U's image, an upscale, /show.

The rule under every policy: a flagged image is never posted unspoilered in a channel
Discord does not mark age-restricted (a DM counts as not age-restricted).

    policy             age-restricted channel    anywhere else
    (default, unset)   posted                    held back
    allow              posted                    spoilered
    spoiler            spoilered                 spoilered
    block              held back                 held back

Held back: the grid shows a grey tile in its place, and U/V on it answer that it was held
back. Spoilered: the file goes as SPOILER_…, which Discord blurs until clicked. Each held-back
or spoilered image is written to the server's moderation log.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from dataclasses import dataclass

import discord
from PIL import Image, ImageDraw, ImageFont

from db.images import StoredImage
from db.members import get_settings
from db.moderation_log import record_action
from generation.images import encode_grid, make_grid, open_image

POLICIES = ("block", "spoiler", "allow")
HELD_BACK = "That image was held back by this server's image policy."
HELD_BACK_TILE = (128, 128, 128)
# policy → (treatment in an age-restricted channel, treatment anywhere else)
TREATMENTS = {None: ("post", "block"), "allow": ("post", "spoiler"),
              "spoiler": ("spoiler", "spoiler"), "block": ("block", "block")}
LOG_ACTIONS = {"block": "image_blocked", "spoiler": "image_spoilered"}


@dataclass(frozen=True)
class Judgement:
    """What to do with a post: "post", "spoiler" or "block" its flagged images."""

    treatment: str
    flagged: tuple[StoredImage, ...]

    @property
    def blocks(self) -> bool:
        return self.treatment == "block" and bool(self.flagged)

    @property
    def spoilers(self) -> bool:
        return self.treatment == "spoiler" and bool(self.flagged)

    def filename(self, name: str) -> str:
        return f"SPOILER_{name}" if self.spoilers else name


def age_restricted(channel) -> bool:
    """Discord's age-restricted (NSFW) mark; DMs and channels we cannot see have none."""
    return getattr(channel, "guild", None) is not None and callable(
        getattr(channel, "is_nsfw", None)) and channel.is_nsfw()


async def judge(db, channel, images: Sequence[StoredImage]) -> Judgement:
    """The treatment of images posted in channel, under its server's policy."""
    flagged = tuple(image for image in images if image.flagged)
    if not flagged:
        return Judgement("post", ())
    guild = getattr(channel, "guild", None)
    policy = None
    if guild is not None:
        async with db.acquire() as conn:
            policy = (await get_settings(conn, "guild", guild.id)).get("image_policy")
    restricted, elsewhere = TREATMENTS[policy if policy in POLICIES else None]
    return Judgement(restricted if age_restricted(channel) else elsewhere, flagged)


async def log_judgement(db, job, channel, judgement: Judgement) -> None:
    """One moderation-log row per held-back or spoilered image (servers only: a DM has no
    server's log)."""
    action = LOG_ACTIONS.get(judgement.treatment)
    guild = getattr(channel, "guild", None)
    if action is None or guild is None:
        return
    async with db.acquire() as conn:
        for image in judgement.flagged:
            await record_action(conn, guild.id, action, target_id=job.member_id,
                                detail={"job": job.id, "slot": image.slot,
                                        "labels": image.safety_labels})


def held_back_tile(width: int, height: int) -> Image.Image:
    """A grey tile saying the image was held back, in a flagged image's place."""
    tile = Image.new("RGB", (width, height), HELD_BACK_TILE)
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=max(8, width // 24))
    draw.multiline_text((width // 2, height // 2), "held back by this\nserver's image policy",
                        font=font, fill=(235, 235, 235), anchor="mm", align="center")
    return tile


async def held_back_grid(blobs, images: Sequence[StoredImage], max_bytes: int) -> bytes:
    """The job's grid rebuilt with a held-back tile in each flagged image's place."""
    def build() -> bytes:
        tiles = [held_back_tile(image.width, image.height) if image.flagged
                 else open_image(blobs.get(image.blob_key)) for image in images]
        return encode_grid(make_grid(tiles), "webp", max_bytes)

    return await asyncio.to_thread(build)


def held_back_file(image: StoredImage, name: str) -> discord.File:
    """The held-back tile as a file, in a single flagged image's place."""
    buffer = io.BytesIO()
    held_back_tile(image.width, image.height).save(buffer, "PNG")
    buffer.seek(0)
    return discord.File(buffer, name)
