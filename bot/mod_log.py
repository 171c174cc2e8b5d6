"""/mod log's text: the moderation log's entries, newest first, one line each, fitted
under Discord's 2,000 characters (bot/status.py counts as Discord's clients do).

Mentions in an ephemeral answer ping nobody (the bot's allowed_mentions is none), and a
<t:…:R> timestamp shows in each reader's own time zone.
"""

from __future__ import annotations

import discord

from bot.status import CONTENT_LIMIT, discord_length, shorten
from db.moderation_log import LogEntry

DETAIL_ROOM = 200  # of one entry's detail (a reason, rule names)
MORE_ROOM = 80  # kept for the line saying how many entries did not fit


def log_text(entries: list[LogEntry]) -> str:
    if not entries:
        return "The moderation log has no entries like that for this server."
    lines, used = [], 0
    for entry in entries:
        line = entry_line(entry)
        if used + discord_length(line) + 1 > CONTENT_LIMIT - MORE_ROOM:
            lines.append(f"… and {len(entries) - len(lines)} older entries: narrow it with "
                         "action, member or limit.")
            break
        lines.append(line)
        used += discord_length(line) + 1
    return "\n".join(lines)


def entry_line(entry: LogEntry) -> str:
    """<t:…:R> who action target: detail."""
    who = f"<@{entry.actor_id}>" if entry.actor_id is not None else "dreamloop"
    target = f" <@{entry.target_id}>" if entry.target_id is not None else ""
    detail = detail_text(entry.detail)
    action = discord.utils.escape_markdown(entry.action)  # refused_banned_member: no italics
    return (f"<t:{int(entry.created_at.timestamp())}:R> {who} **{action}**{target}"
            + (f": {detail}" if detail else ""))


def detail_text(detail: dict) -> str:
    """key: value pairs, as typed by whoever wrote them (escaped, shortened)."""
    shown = "; ".join(f"{key.replace('_', ' ')}: {_value(value)}"
                      for key, value in detail.items() if value not in (None, "", []))
    return shorten(discord.utils.escape_markdown(shown), DETAIL_ROOM)


def _value(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)
