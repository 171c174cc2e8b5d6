"""The bans' edge: a member an admin banned here (/mod ban) is refused everything that
would make a job or record feedback in this server, each refusal logged for the admins.

Checked in each command and button, after it is acknowledged (Discord's 3 s); admission
(bot/limits.py admit) checks again under the member's lock, so a job racing a ban is
refused too.
"""

from __future__ import annotations

import discord

from bot.errors import answer
from bot.limits import BANNED
from db.guild_bans import is_banned
from db.moderation_log import record_action


async def refused_here(interaction: discord.Interaction, what: str) -> bool:
    """True, once the member is told and the refusal logged, when they are banned here;
    what names what they tried (/imagine, a button)."""
    async with interaction.client.services.db.acquire() as conn:
        if not await is_banned(conn, interaction.guild_id, interaction.user.id):
            return False
        await record_action(conn, interaction.guild_id, "refused_banned_member",
                            target_id=interaction.user.id, detail={"tried": what})
    await answer(interaction, BANNED)
    return True

