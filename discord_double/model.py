"""What the double remembers, and Discord's rules it enforces (see README.md for sources)."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000
CALLBACK_DEADLINE_S = 3.0  # an interaction must be answered within 3 s
TOKEN_LIFETIME_S = 15 * 60  # follow-ups and @original edits work for 15 minutes
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # bytes per file, for bots since 2025-01-16
MAX_CUSTOM_ID = 100
MAX_CONTENT = 2000
MAX_ROWS = MAX_PER_ROW = 5


class DiscordError(Exception):
    """An error response exactly as Discord sends it: HTTP status and JSON code."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict:
        body = {"message": self.message, "code": self.code}
        return body | ({"errors": self.errors} if self.errors else {})


def unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


def invalid_webhook_token() -> DiscordError:
    return DiscordError(401, 50027, "Invalid Webhook Token")


class Clock:
    """Wall time plus an offset tests move forward (to cross the 15-minute line)."""

    def __init__(self):
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def iso(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).isoformat()


class Snowflakes:
    """Discord-shaped ids: milliseconds since 2015 in the high bits, a counter below."""

    def __init__(self, clock: Clock):
        self.clock, self.counter = clock, itertools.count()

    def next(self) -> int:
        ms = int(self.clock.now() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self.counter) & 0xFFF)


@dataclass
class Message:
    payload: dict  # the message object as Discord returns it
    files: dict[str, bytes] = field(default_factory=dict)  # filename → bytes
    pinged: dict = field(default_factory=dict)  # who was notified: everyone, users, roles
    deleted: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def content(self) -> str:
        return self.payload.get("content", "")

    @property
    def components(self) -> list[dict]:
        return self.payload.get("components", [])

    @property
    def embeds(self) -> list[dict]:
        return self.payload.get("embeds", [])

    def custom_ids(self) -> list[str]:
        return [item["custom_id"] for row in self.components
                for item in row.get("components", []) if "custom_id" in item]


@dataclass
class Interaction:
    id: int
    token: str
    kind: int  # 2 command, 3 component, 4 autocomplete, 5 modal submit
    created_at: float  # the double's clock
    channel_id: int
    payload: dict
    callbacks: list[tuple[float, dict]] = field(default_factory=list)  # (seconds after, body)
    original_message_id: int | None = None
    errors: list[DiscordError] = field(default_factory=list)  # what Discord refused
    modal: dict | None = None  # the modal it was answered with (callback type 9)

    @property
    def acknowledged_after(self) -> float | None:
        """Seconds from creation to the accepted callback, or None if never answered."""
        return self.callbacks[0][0] if self.callbacks else None

    @property
    def callback_type(self) -> int | None:
        return self.callbacks[0][1]["type"] if self.callbacks else None


def new_token() -> str:
    return "interaction." + secrets.token_urlsafe(24)


def check_components(components: list[dict]) -> None:
    """At most 5 rows of at most 5 buttons; custom ids of at most 100 characters."""
    errors = {}
    if len(components) > MAX_ROWS:
        errors["components"] = f"Must be {MAX_ROWS} or fewer in length."
    for r, row in enumerate(components):
        items = row.get("components", [])
        if len(items) > MAX_PER_ROW:
            errors[f"components.{r}.components"] = f"Must be {MAX_PER_ROW} or fewer in length."
        for i, item in enumerate(items):
            if len(item.get("custom_id", "")) > MAX_CUSTOM_ID:
                errors[f"components.{r}.components.{i}.custom_id"] = (
                    f"Must be {MAX_CUSTOM_ID} or fewer in length.")
    if errors:
        raise DiscordError(400, 50035, "Invalid Form Body", errors)


def check_content(content: str | None) -> None:
    """Message content: at most 2,000 characters, on create and on edit alike. Discord's
    API counts code points (the client's counter can differ for emoji)."""
    if len(content or "") > MAX_CONTENT:
        raise DiscordError(400, 50035, "Invalid Form Body", {"content": {"_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH",
             "message": f"Must be {MAX_CONTENT} or fewer in length."}]}})


def check_files(files: dict[str, bytes], limit: int) -> None:
    if any(len(data) > limit for data in files.values()):
        raise DiscordError(413, 40005, "Request entity too large")


_USER = re.compile(r"<@!?(\d+)>")
_ROLE = re.compile(r"<@&(\d+)>")


def resolve_mentions(content: str, allowed: dict | None) -> dict:
    """Who a message notifies. Absent allowed_mentions means Discord's default: parse
    everyone, users and roles from the content."""
    allowed = allowed if allowed is not None else {"parse": ["everyone", "users", "roles"]}
    parse = set(allowed.get("parse", []))
    users = {int(u) for u in _USER.findall(content)}
    roles = {int(r) for r in _ROLE.findall(content)}
    listed_users = {int(u) for u in allowed.get("users", [])}
    listed_roles = {int(r) for r in allowed.get("roles", [])}
    return {
        "everyone": "everyone" in parse and bool(re.search(r"@(everyone|here)", content)),
        "users": users if "users" in parse else users & listed_users,
        "roles": roles if "roles" in parse else roles & listed_roles,
    }
