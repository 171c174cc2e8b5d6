"""Who may run a server's admin commands: members with Manage Server, checked in our code.

`default_permissions` on a command is only Discord's default: a server's admins can expose
the command to anyone in Integrations settings (REFERENCE.md §1). So every admin command
asks this first, from the permissions Discord sends with the interaction itself.
"""

from __future__ import annotations

import discord

from bot.errors import answer
from bot.refusals import log_refusal


def is_server_admin(interaction: discord.Interaction) -> bool:
    """True for a member with Manage Server, in a server (never in a DM)."""
    return interaction.guild_id is not None and interaction.permissions.manage_guild


def not_an_admin(what: str) -> str:
    """The refusal for a member without Manage Server; what says what they tried."""
    return f"Only members with the Manage Server permission can {what}."


async def refused_unless_admin(interaction: discord.Interaction, what: str,
                               hint: str = "") -> bool:
    """True once a member without Manage Server is told (not_an_admin(what) + hint) and the
    refusal is in the moderation log for the admins; False for an admin."""
    if is_server_admin(interaction):
        return False
    await log_refusal(interaction, "refused_not_an_admin",
                      command=f"/{interaction.command.qualified_name}")
    await answer(interaction, not_an_admin(what) + hint)
    return True
