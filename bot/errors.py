"""Every interaction gets an answer, even when the work behind it fails.

Discord shows "thinking…" for a deferred interaction until the bot follows up, and "The
application did not respond" for one never acknowledged; discord.py only logs a command's
or a button's exception. So failures are turned into a message for the member here, at the
edge: slash commands through the command tree's on_error (DreamloopTree), buttons (our
DynamicItems, whose exceptions discord.py logs and drops) through @answers_failures.
"""

from __future__ import annotations

import functools
import logging

import asyncpg
import discord
import redis.asyncio as redis
from discord import app_commands

from bot.raw_options import option_problem
from bot.refusals import log_refusal
from bot.uploads import UploadTooLarge
from db.connection import DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE_DOWN = ("The database is unreachable right now, so I could not do that; "
                 "try again in a minute.")
QUEUE_DOWN = ("The job queue is unreachable right now, so I could not do that; "
              "try again in a minute.")
TOO_SLOW = ("A server I need did not answer in time, so I could not do that; "
            "try again in a minute.")
UNKNOWN = ("Something went wrong on my side and I could not do that; try again, and if it "
           "keeps happening tell this server's admins (the bot's log says what happened).")

# What a lost PostgreSQL looks like once a connection was had (before: DatabaseUnavailable).
_DATABASE_ERRORS = (DatabaseUnavailable, asyncpg.PostgresConnectionError,
                    asyncpg.exceptions.OperatorInterventionError,
                    asyncpg.exceptions.InsufficientResourcesError)
# BusyLoadingError (Redis reading its append-only file after a restart) is a ConnectionError.
_QUEUE_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def member_message(error: BaseException) -> str:
    """What to tell the member about error: what failed and what to do, no Python text."""
    if isinstance(error, _DATABASE_ERRORS):
        return DATABASE_DOWN
    if isinstance(error, _QUEUE_ERRORS):
        return QUEUE_DOWN
    if isinstance(error, TimeoutError):
        return TOO_SLOW
    if isinstance(error, UploadTooLarge):
        return str(error)  # /show, an upscale: says the limit that nothing fits
    if isinstance(error, discord.HTTPException):
        return f"Discord refused what I tried to post ({error.text or error.status})."
    if isinstance(error, app_commands.AppCommandError) and not isinstance(
            error, app_commands.CommandInvokeError):
        return str(error)  # discord.py's own, written for members (missing permissions…)
    return UNKNOWN


async def answer_failure(interaction: discord.Interaction, error: BaseException) -> None:
    """Log error, then tell the member: as the answer itself, or in place of "thinking…",
    or else as a follow-up."""
    log.error("interaction %s (%s) failed", interaction.id, _what(interaction), exc_info=error)
    text = member_message(error)
    try:
        if not interaction.response.is_done() or await _still_thinking(interaction):
            await answer(interaction, text)
        else:  # it was answered already, and then something more failed
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException as unanswered:  # e.g. its token died after 15 minutes
        log.warning("interaction %s: could not tell the member either (%s)", interaction.id,
                    unanswered)


async def answer(interaction: discord.Interaction, text: str) -> None:
    """The interaction's one ephemeral answer: sent now, or once deferred, in place of
    "thinking…" (editing the deferred response is what ends it); after a deferred update
    (a /rate vote) the message stays, and the member is told apart."""
    response = interaction.response
    if not response.is_done():
        await response.send_message(text, ephemeral=True)
    elif response.type is discord.InteractionResponseType.deferred_message_update:
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.edit_original_response(content=text)


async def _still_thinking(interaction: discord.Interaction) -> bool:
    if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
        return False  # e.g. a button's deferred update: there is no "thinking…" to replace
    return (await interaction.original_response()).flags.loading


class DreamloopTree(app_commands.CommandTree):
    """The command tree whose failures are answered (commands.Bot(tree_cls=…))."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Refuse a slash command whose options are not what the command declares
        (bot/raw_options.py): the member is told why, and nothing runs."""
        if interaction.type is not discord.InteractionType.application_command:
            return True
        try:
            command, options = self._get_app_command_options(interaction.data)
        except app_commands.CommandNotFound:
            return True  # discord.py answers it through on_error
        except (AttributeError, KeyError, TypeError):  # options that are not objects at all
            command, options = None, None
        problem = option_problem(command, options)
        if problem:
            log.info("interaction %s: refused its options: %s", interaction.id, problem)
            await interaction.response.send_message(problem, ephemeral=True)
            await log_refusal(interaction, "options_refused",
                              command=getattr(command, "qualified_name", None), reason=problem)
        return problem is None

    async def on_error(self, interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        await answer_failure(interaction, getattr(error, "original", error))


def answers_failures(callback):
    """For a DynamicItem's callback: an exception becomes a message to the clicker."""
    @functools.wraps(callback)
    async def wrapper(self, interaction: discord.Interaction) -> None:
        try:
            await callback(self, interaction)
        except Exception as error:
            await answer_failure(interaction, error)
    return wrapper


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    return str((interaction.data or {}).get("custom_id", interaction.type))
