"""/mod log's text fits one Discord message however long the log, and shows members' words
as typed (escaped), never as markdown."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.mod_log import log_text
from bot.status import CONTENT_LIMIT, discord_length
from db.moderation_log import LogEntry


def entry(n: int, detail: dict, actor_id: int | None = 7) -> LogEntry:
    return LogEntry(id=n, guild_id=1, actor_id=actor_id, action="ban", target_id=9,
                    detail=detail, created_at=datetime(2026, 12, 3, tzinfo=UTC))


def test_fifty_long_entries_fit_under_discords_limit_saying_how_many_are_left_out():
    text = log_text([entry(n, {"reason": "🦊" * 500}) for n in range(50)])
    assert discord_length(text) <= CONTENT_LIMIT
    lines = text.splitlines()
    assert lines[-1] == (f"… and {50 - len(lines) + 1} older entries: narrow it with action, "
                         "member or limit.")
    assert all(discord_length(line) <= 260 for line in lines[:-1])


def test_a_line_says_when_who_what_whom_and_the_details_escaped():
    [line] = log_text([entry(1, {"reason": "**spam** _now_", "cancelled_jobs": [4, 5]},
                             actor_id=None)]).splitlines()
    assert line == (f"<t:{int(datetime(2026, 12, 3, tzinfo=UTC).timestamp())}:R> dreamloop "
                    r"**ban** <@9>: reason: \*\*spam\*\* \_now\_; cancelled jobs: 4, 5")


def test_an_empty_log_says_so():
    assert log_text([]) == "The moderation log has no entries like that for this server."
