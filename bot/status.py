"""What the bot echoes back in a channel: the prompt in every status, grid, image, /rate and
failure message, shortened to fit, and what each job is ("Variations (Strong) of image #2
by @bob"), the way Midjourney words it.

Discord refuses a message whose content is over 2,000 characters (400, code 50035 "Invalid
Form Body"). Markdown escaping can double a prompt (every `_` becomes `\\_`), so a prompt
that was accepted can still make a post too long: the escaped prompt is shortened with an
ellipsis to the room the rest of the message leaves. Lengths are counted in UTF-16 code
units, as Discord's clients count them; that is never fewer than the code points its API
counts, so a text that fits by this count fits by both.
"""

from __future__ import annotations

import contextlib
import re

import discord

from db.jobs import member_load, queue_position, set_message_ids
from db.members import get_settings
from generation.contract import VARIATION_STRENGTH

CONTENT_LIMIT = 2000  # characters of message content (discord-api-docs, create message)
# A status message grows after it is first posted: " — queued (#12)", " — (57%)", or a
# failure's reason; this much is kept free for such endings.
STATUS_ENDING_ROOM = 400
ERROR_ROOM = 300  # of a worker's error text shown in a channel
ELLIPSIS = "…"
_PARENT = re.compile(r"images/\d+/(?P<slot>\d+)\.png")
_STRENGTH_NAMES = {value: name.title() for name, value in VARIATION_STRENGTH.items()}


def discord_length(text: str) -> int:
    """Length in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, room: int) -> str:
    """text itself if it fits in room, else its start and an ellipsis, in room. Escaped
    text is cut between escapes: a backslash is never left to escape the ellipsis."""
    if discord_length(text) <= room:
        return text
    cut, used = [], discord_length(ELLIPSIS)
    for character in text:
        used += discord_length(character)
        if used > room:
            break
        cut.append(character)
    kept = "".join(cut)
    if (len(kept) - len(kept.rstrip("\\"))) % 2:  # an escape cut in half
        kept = kept[:-1]
    return kept.rstrip() + ELLIPSIS


def echo(prompt: str, room: int) -> str:
    """A member's text as they typed it (markdown escaped, so `**` shows as typed) in room."""
    return shorten(discord.utils.escape_markdown(prompt), max(room, 1))


def with_prompt(prompt: str, before: str = "", after: str = "", reserve: int = 0) -> str:
    """before + the echoed prompt + after, within Discord's content limit less reserve."""
    room = CONTENT_LIMIT - reserve - discord_length(before + after)
    return before + echo(prompt, room) + after


def what_it_is(job) -> str:
    """'' for an /imagine; for follow-up work, what it is and whose ("... by ")."""
    request = job.request
    parent = _PARENT.fullmatch(request.parent_image or "")
    of = f" of image #{parent['slot']}" if parent else ""
    if job.kind == "variation":
        strength = _STRENGTH_NAMES.get(request.strength, f"strength {request.strength:g}")
        return f"Variations ({strength}){of} by "
    if job.kind == "upscale":
        return f"Upscaled ×2{of} by "
    if job.kind == "reroll":
        return "Drawn again by "
    return ""


def status_text(job) -> str:
    """The start of a job's status and result messages: the prompt, what the job is and its
    member (mentioned, never pinged: the client allows no mentions), leaving room for the
    status's ending."""
    return with_prompt(job.request.prompt, "**",
                       f"** — {what_it_is(job)}<@{job.member_id}>", STATUS_ENDING_ROOM)


def image_text(job, slot: int, member_id: int) -> str:
    """A single image taken from a grid (U): its prompt, its number, who took it."""
    return with_prompt(job.request.prompt, "**", f"** — Image #{slot} <@{member_id}>")


def failure_text(job, error: str) -> str:
    """A job the workers could not draw: the worker's words, escaped and cut short."""
    reason = echo(error or "no reason given", ERROR_ROOM)
    return f"{status_text(job)} — job {job.id} could not be drawn: {reason}"


def undelivered_text(job, error: discord.HTTPException, attempts: int) -> str:
    """A drawn job whose post Discord kept refusing."""
    reason = echo(f"{error.status} {error.response.reason}", ERROR_ROOM)
    times = "once" if attempts == 1 else f"{attempts} times"
    return (f"{status_text(job)} — job {job.id} was drawn, but Discord refused its post "
            f"{times} ({reason}), so it is not shown here.")


def cannot_post(job, error: discord.HTTPException) -> str:
    """The member's ephemeral answer when their job's status message was refused: only a
    refusal of access is an admin's to fix."""
    if isinstance(error, discord.Forbidden):
        return (f"Job {job.id} is queued, but I cannot post in this channel ({error.text}); "
                "ask an admin to let me send messages and attach files here.")
    return (f"Job {job.id} is queued, but Discord refused its status message "
            f"({error.status}: {shorten(error.text, ERROR_ROOM)}); its images are posted "
            "here when they are drawn.")


async def post_status(bot, channel, job) -> discord.Message:
    """A job's status message: an ordinary channel message (it can be edited after the 15
    minutes an interaction token lives), then edited with its progress. HTTPException
    when Discord refuses it."""
    services = bot.services
    async with services.db.acquire() as conn:
        position = await queue_position(conn, job.id)
    text = status_text(job)
    where = (f"queued (#{position or 1})" if job.dispatched_at else
             await waiting_text(services, job))
    status = await channel.send(f"{text} — {where}")
    bot.progress.watch(job.id, status, text)
    async with services.db.acquire() as conn:
        await set_message_ids(conn, job.id, status_message_id=status.id)
    return status


def status_message(bot, job) -> discord.Message | discord.PartialMessage | None:
    """The job's status message, no longer shown progress on (it is done or cancelled)."""
    progress = getattr(bot, "progress", None)  # delivery can run without the relay
    message = progress.forget(job.id) if progress is not None else None
    if message is None and job.status_message_id and job.channel_id:
        channel = bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        message = channel.get_partial_message(job.status_message_id)
    return message


async def clear_status(bot, job) -> None:
    """The job's result is posted: its status message goes (Midjourney's way), rather than
    stay at "(100%)" above the result."""
    message = status_message(bot, job)
    if message is not None:
        with contextlib.suppress(discord.HTTPException):  # already gone, or no access
            await message.delete()


async def waiting_text(services, job) -> str:
    """Why a job is not in a stream yet: its member's cap, or its fair-share turn."""
    async with services.db.acquire() as conn:
        load = await member_load(conn, job.member_id) if job.member_id else None
        guild = await get_settings(conn, "guild", job.guild_id) if job.guild_id else {}
    most = guild.get("max_running") or services.limits.max_running  # the server's, if set
    if load is not None and load.in_flight >= most:
        return f"waiting: {most} of your jobs are in progress"
    return "waiting for its turn (members share the GPUs fairly)"
