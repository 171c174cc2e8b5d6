"""Where a server's admins let dreamloop post (/settings server allow_channel): /imagine
checks it when a prompt is sent, and so does every button and /show, when clicked.

The rule we chose: a channel taken off the list is closed to all new work, old messages'
buttons included. A click there would post new images in a channel the admins closed;
refusing it, with where dreamloop works now, keeps the one rule everywhere.
"""

from __future__ import annotations

import discord

from bot.errors import answer
from bot.settings import load_defaults


async def channel_refused(interaction: discord.Interaction, what: str) -> bool:
    """True, once the member is told where dreamloop works, in a channel the server's list
    leaves out; what starts the sentence ("/show works")."""
    defaults = await load_defaults(interaction.client.services.db, interaction.user.id,
                                   interaction.guild_id)
    if defaults.allows(interaction.channel_id):
        return False
    await answer(interaction, f"{what} only in {defaults.where_allowed()} on this server "
                            "(set by its admins with /settings server).")
    return True
