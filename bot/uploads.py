"""Files the bot posts fit the channel's upload limit.

Discord refuses a file over the limit (413, code 40005 "Request entity too large"). The
limit is 10 MiB per file for bots by default (since 2025-01-16), more in boosted guilds;
every interaction says the real one (`attachment_size_limit`), so the bot remembers the
latest one per guild for the posts it makes without an interaction (delivery).
"""

from __future__ import annotations

import asyncio
import io
from pathlib import PurePath

import discord

from generation.images import DISCORD_UPLOAD_LIMIT, fit_upload


class UploadLimits:
    def __init__(self):
        self.by_guild: dict[int, int] = {}

    async def learn(self, interaction: discord.Interaction) -> None:
        """An on_interaction listener: the payload's attachment_size_limit."""
        limit = getattr(interaction, "filesize_limit", None)
        if interaction.guild_id is not None and limit:
            self.by_guild[interaction.guild_id] = limit


def upload_limit(bot, guild_id: int | None) -> int:
    """The guild's limit as its latest interaction said, else as its boost tier says."""
    limits = getattr(bot, "upload_limits", None)
    if limits is not None and guild_id in limits.by_guild:
        return limits.by_guild[guild_id]
    guild = bot.get_guild(guild_id) if guild_id is not None else None
    return guild.filesize_limit if guild is not None else DISCORD_UPLOAD_LIMIT


class UploadTooLarge(Exception):
    """No readable WebP of the image fits the limit (a limit of a few bytes)."""

    def __init__(self, limit: int):
        super().__init__(f"The image cannot be made to fit this server's upload limit "
                         f"({limit} bytes), not even as a smaller WebP.")
        self.limit = limit


async def image_file(data: bytes, filename: str, limit: int) -> discord.File:
    """The image as a file to post: as it is when it fits the limit, else as a WebP that
    does (the name says which); UploadTooLarge when none does."""
    try:
        fitted, fmt = await asyncio.to_thread(fit_upload, data, limit)
    except ValueError as error:
        raise UploadTooLarge(limit) from error
    if fmt is not None:
        filename = str(PurePath(filename).with_suffix(f".{fmt}"))
    return discord.File(io.BytesIO(fitted), filename)
