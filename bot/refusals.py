"""The bot's own refusals of hostile input, written to the server's moderation log (admins
read it), so a forged payload or a click flood is explainable and visible afterwards."""

from __future__ import annotations

import logging

import asyncpg
import discord

from db.connection import DatabaseUnavailable
from db.moderation_log import record_action

log = logging.getLogger(__name__)


async def log_refusal(interaction: discord.Interaction, action: str, **detail) -> None:
    """One entry: the bot (no actor) refused this member. The member has been answered
    already, so a database that is down costs only the entry."""
    if interaction.guild_id is None:
        return
    try:
        async with interaction.client.services.db.acquire() as conn:
            await record_action(conn, interaction.guild_id, action,
                                target_id=interaction.user.id, detail=detail)
    except (DatabaseUnavailable, asyncpg.PostgresError, OSError, TimeoutError) as error:
        log.warning("interaction %s: %s not written to the moderation log (%s)",
                    interaction.id, action, error)
