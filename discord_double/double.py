"""The Discord double: one guild with members, REST and gateway on loopback, and a
scripted member API for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from discord_double import payloads
from discord_double.faults import Fault, route_pattern
from discord_double.gateway import DISPATCH, GatewaySession
from discord_double.modals import ModalActions
from discord_double.model import (
    DEFAULT_UPLOAD_LIMIT,
    Clock,
    Interaction,
    Message,
    Snowflakes,
    check_components,
    check_content,
    check_files,
    new_token,
    resolve_mentions,
)
from discord_double.rest import build_app

EPHEMERAL = 1 << 6
USER_OPTION, CHANNEL_OPTION, ATTACHMENT_OPTION = 6, 7, 11  # application command option types
OPTION_TYPES = {3: str, 4: int, 5: bool, 10: float}


class DiscordDouble(ModalActions):
    def __init__(self, token: str = "test-bot-token", upload_limit: int = DEFAULT_UPLOAD_LIMIT):
        self.token, self.upload_limit = token, upload_limit
        self.clock = Clock()
        self.ids = Snowflakes(self.clock)
        self.application_id = self.ids.next()
        self.bot = payloads.user(self.ids.next(), "dreamloop-test-bot", bot=True)
        self.guild_id = self.ids.next()
        self.users = {name: payloads.user(self.ids.next(), name) for name in ("alice", "bob")}
        self.roles = {"@everyone": payloads.role(self.guild_id, "@everyone",
                                                 payloads.EVERYONE_PERMISSIONS, 0),
                      "mods": payloads.role(self.ids.next(), "mods", payloads.MANAGE_GUILD, 1)}
        self.member_roles = {"alice": ["mods"], "bob": []}
        self.channels = {name: payloads.text_channel(self.ids.next(), self.guild_id, name, i)
                         for i, name in enumerate(("general", "art"))}
        self.messages: dict[int, Message] = {}
        self.uploads: dict[str, bytes] = {}  # "{attachment id}/{filename}" → bytes
        self.no_access: set[int] = set()  # channel ids the bot may no longer post in
        self.refused: dict[int, int] = {}  # channel id → posts refused there
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict]] = {}  # guild id (None: global) → commands
        self.command_syncs = 0
        self.identify_count = 0
        self.sessions: list[GatewaySession] = []
        self.unhandled: list[str] = []  # requests the double does not implement
        self.faults: list[Fault] = []  # armed by fail_next() and hold()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for session in list(self.sessions):
            if session.socket is not None:
                await session.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        """Point discord.py here: `discord.http.Route.BASE = double.api_base`."""
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- the scripted member API ------------------------------------------------------------

    def add_member(self, name: str, roles: tuple[str, ...] = ()) -> None:
        """Another member of the guild, with role names from `roles` (none: @everyone only).
        Add members before the bot connects, so its GUILD_CREATE lists them too."""
        if name in self.users:
            raise ValueError(f"the guild already has a member named {name!r}")
        self.users[name] = payloads.user(self.ids.next(), name)
        self.member_roles[name] = list(roles)

    async def add_channel(self, name: str, nsfw: bool = False) -> None:
        """Another text channel; nsfw marks it age-restricted. A connected bot is told at
        once (CHANNEL_CREATE), as Discord tells it of a channel an admin makes."""
        if name in self.channels:
            raise ValueError(f"the guild already has a channel named {name!r}")
        self.channels[name] = payloads.text_channel(self.ids.next(), self.guild_id, name,
                                                    len(self.channels), nsfw=nsfw)
        await self.dispatch("CHANNEL_CREATE", self.channels[name])

    def revoke_access(self, channel: str) -> None:
        """Take the bot's access to a channel away (an admin's change, or a private
        channel): its posts there now get 403, code 50001 "Missing Access"."""
        self.no_access.add(self.channel_id(channel))

    def refused_posts(self, channel: str) -> int:
        """How many messages the bot tried to post where it has no access."""
        return self.refused.get(self.channel_id(channel), 0)

    def fail_next(self, method: str, route: str, count: int, status: int = 503,
                  retry_after: float = 1.0, skip: int = 0) -> Fault:
        """After skip requests to route ("/channels/{channel}/messages"), the next count get
        status: a 5xx, or 429 with Discord's rate-limit body and headers (see faults.py)."""
        fault = Fault(method, route_pattern(route), count, status, retry_after, skip=skip)
        self.faults.append(fault)
        return fault

    def hold(self, method: str, route: str) -> asyncio.Event:
        """Requests to route wait, unanswered, until the returned event is set."""
        gate = asyncio.Event()
        self.faults.append(Fault(method, route_pattern(route), gate=gate))
        return gate

    def channel_id(self, name: str) -> int:
        return int(self.channels[name]["id"])

    def user_id(self, name: str) -> int:
        return int(self.users[name]["id"])

    async def wait_until_connected(self, timeout: float = 20) -> None:
        """Until a bot has identified on the gateway (and received its guild)."""
        await self._until(lambda: any(s.identified and s.socket is not None
                                      for s in self.sessions), timeout,
                          "no bot connected to the gateway")

    async def slash(self, member: str, channel: str, name: str, /, **options) -> Interaction:
        """Invoke the synced slash command `name` ("settings me" for a subcommand) as member
        in channel; an attachment option takes what upload() returned."""
        top, _, sub = name.partition(" ")
        command = self._synced_command(top)
        data = {"id": command["id"], "name": top, "type": 1, "guild_id": str(self.guild_id),
                "options": [], "resolved": {}}
        spec, given = command, data["options"]
        if sub:
            spec = self._option_spec(command, sub)
            given.append({"name": sub, "type": spec["type"], "options": []})
            given = given[0]["options"]
        for key, value in options.items():
            given.append(self._option(spec, key, value, data["resolved"]))
        return await self._interact(member, channel, 2, data)

    def upload(self, filename: str, data: bytes, content_type: str | None = None) -> dict:
        """A file a member attaches to a slash command: Discord stores it on its CDN first
        and sends the bot its attachment object (with a link that expires)."""
        attachment_id = self.ids.next()
        self.uploads[f"{attachment_id}/{filename}"] = data
        url = (f"http://127.0.0.1:{self.port}/ephemeral-attachments/{attachment_id}/"
               f"{filename}")
        return payloads.attachment(attachment_id, filename, data, url, content_type)

    async def autocomplete(self, member: str, channel: str, name: str, option: str,
                           typed: str) -> Interaction:
        """Type into option of /name: the bot answers with choices (callback type 8)."""
        command = self._synced_command(name)
        focused = self._option(command, option, typed) | {"focused": True}
        data = {"id": command["id"], "name": name, "type": 1, "options": [focused]}
        return await self._interact(member, channel, 4, data)

    async def click(self, member: str, message: Message, custom_id: str) -> Interaction:
        """Click the button with custom_id on message, as member."""
        if custom_id not in message.custom_ids():
            raise AssertionError(f"no button {custom_id!r} on the message; it has "
                                 f"{message.custom_ids()}")
        channel = next(n for n, c in self.channels.items()
                       if int(c["id"]) == int(message.payload["channel_id"]))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(member, channel, 3, data, message=message.payload)

    async def click_raw(self, member: str, message: Message, custom_id: str) -> Interaction:
        """A click that carries any custom_id, as a forged or stale client could send it:
        not checked against the message's buttons."""
        channel = next(n for n, c in self.channels.items()
                       if int(c["id"]) == int(message.payload["channel_id"]))
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(member, channel, 3, data, message=message.payload)

    async def slash_raw(self, member: str, channel: str, name: str, options: list[dict],
                        resolved: dict | None = None) -> Interaction:
        """Invoke /name with options exactly as given (any names, types and values, past
        the limits Discord's client would enforce): a hostile payload."""
        command = self._synced_command(name)
        data = {"id": command["id"], "name": name, "type": 1, "guild_id": str(self.guild_id),
                "options": options, "resolved": resolved or {}}
        return await self._interact(member, channel, 2, data)

    def channel_messages(self, channel: str, viewer: str | None = None) -> list[Message]:
        """The channel's messages, oldest first; ephemeral ones only for their viewer."""
        cid = self.channel_id(channel)
        return [m for m in self.messages.values()
                if int(m.payload["channel_id"]) == cid and not m.deleted
                and (not m.payload["flags"] & EPHEMERAL or m.payload.get("_viewer") == viewer)]

    async def wait_for_message(self, channel: str, predicate: Callable[[Message], bool],
                               timeout: float = 20, viewer: str | None = None) -> Message:
        found: list[Message] = []

        def match() -> bool:
            found[:] = [m for m in self.channel_messages(channel, viewer) if predicate(m)]
            return bool(found)

        await self._until(match, timeout, f"no such message in #{channel}")
        return found[-1]

    async def wait_for_callback(self, interaction: Interaction, timeout: float = 10) -> None:
        await self._until(lambda: interaction.callbacks or interaction.errors, timeout,
                          f"interaction {interaction.id} was never answered")

    async def _until(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s")
            await asyncio.sleep(0.02)

    # -- what the handlers and gateway use ---------------------------------------------------

    def _synced_command(self, name: str) -> dict:
        for command in self.commands.get(self.guild_id, []) + self.commands.get(None, []):
            if command["name"] == name:
                return command
        raise AssertionError(f"the bot has not synced a command named {name!r}")

    def _option_spec(self, command: dict, key: str) -> dict:
        spec = next((o for o in command.get("options", []) if o["name"] == key), None)
        if spec is None:
            raise AssertionError(f"/{command['name']} has no option {key!r}")
        return spec

    def _option(self, command: dict, key: str, value, resolved: dict | None = None) -> dict:
        spec = self._option_spec(command, key)
        # Attachments and channels are sent as ids, their objects under "resolved".
        if spec["type"] == ATTACHMENT_OPTION:  # value: what upload() returned
            resolved.setdefault("attachments", {})[value["id"]] = value
            value = value["id"]
        elif spec["type"] == CHANNEL_OPTION:  # value: the channel's name
            channel = self.channels[value] | {"permissions": str(payloads.EVERYONE_PERMISSIONS)}
            resolved.setdefault("channels", {})[channel["id"]] = channel
            value = channel["id"]
        elif spec["type"] == USER_OPTION:  # value: a member's name, or "bot" for the bot
            value = self._resolve_user(value, resolved)
        return {"name": key, "type": spec["type"], "value": value}

    def _resolve_user(self, name: str, resolved: dict) -> str:
        """A user option: the user under resolved.users, the member (without its user)
        under resolved.members, as Discord sends them."""
        if name == "bot":
            user, member = self.bot, payloads.member(self.bot, [], self.clock.iso(), 0)
        else:
            user, member = self.users[name], self.member_payload(name)
        resolved.setdefault("users", {})[user["id"]] = user
        resolved.setdefault("members", {})[user["id"]] = {
            k: v for k, v in member.items() if k != "user"}
        return user["id"]

    async def _interact(self, member: str, channel: str, kind: int, data: dict,
                        message: dict | None = None) -> Interaction:
        interaction = Interaction(id=self.ids.next(), token=new_token(), kind=kind,
                                  created_at=self.clock.now(),
                                  channel_id=self.channel_id(channel), payload={})
        interaction.payload = self._interaction_payload(interaction, member, channel, data)
        if message is not None:
            interaction.payload["message"] = message
        interaction.payload["_member"] = member
        self.interactions[interaction.id] = interaction
        await self.dispatch("INTERACTION_CREATE", {k: v for k, v in interaction.payload.items()
                                                   if not k.startswith("_")})
        return interaction

    def _interaction_payload(self, interaction: Interaction, member: str, channel: str,
                             data: dict) -> dict:
        return {"id": str(interaction.id), "application_id": str(self.application_id),
                "type": interaction.kind, "token": interaction.token, "version": 1,
                "guild_id": str(self.guild_id), "channel_id": str(interaction.channel_id),
                "channel": self.channels[channel], "member": self.member_payload(member),
                "data": data, "locale": "en-US", "guild_locale": "en-US",
                "app_permissions": str(payloads.EVERYONE_PERMISSIONS), "entitlements": [],
                "authorizing_integration_owners": {"0": str(self.guild_id)}, "context": 0,
                "attachment_size_limit": self.upload_limit}

    def member_payload(self, name: str) -> dict:
        roles = [self.roles[r] for r in self.member_roles.get(name, [])]
        permissions = payloads.EVERYONE_PERMISSIONS
        for role in roles:
            permissions |= int(role["permissions"])
        return payloads.member(self.users[name], [int(r["id"]) for r in roles],
                               self.clock.iso(), permissions)

    async def dispatch(self, event: str, data: dict) -> None:
        for session in [s for s in self.sessions if s.identified]:
            await session.send(DISPATCH, data, event)

    def ready_payload(self, session: GatewaySession) -> dict:
        return {"v": 10, "user": self.bot | {"verified": True, "mfa_enabled": False, "flags": 0},
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": session.id, "resume_gateway_url": self.gateway_url,
                "shard": [0, 1], "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [], "relationships": [], "presences": []}

    def guild_payload(self) -> dict:
        members = [payloads.member(self.bot, [], self.clock.iso(), 0)] + [
            self.member_payload(name) for name in self.users]
        return {"id": str(self.guild_id), "name": "dreamloop test guild", "icon": None,
                "owner_id": self.users["alice"]["id"], "roles": list(self.roles.values()),
                "channels": list(self.channels.values()), "members": members,
                "member_count": len(members), "unavailable": False, "features": [],
                "emojis": [], "stickers": [], "large": False, "joined_at": self.clock.iso(),
                "threads": [], "presences": [], "voice_states": [], "stage_instances": [],
                "guild_scheduled_events": [], "soundboard_sounds": [], "premium_tier": 0,
                "preferred_locale": "en-US", "verification_level": 0, "mfa_level": 0,
                "default_message_notifications": 0, "explicit_content_filter": 0,
                "nsfw_level": 0, "system_channel_flags": 0, "afk_timeout": 300,
                "max_members": 500000, "premium_progress_bar_enabled": False}

    async def resume(self, session: GatewaySession, data: dict) -> None:
        """Hand the old session's numbering to this connection and replay what it missed."""
        old = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        if old is None or data.get("token") != self.token:
            await session.send(9, False)  # INVALID_SESSION, not resumable
            return
        session.id, session.seq, session.sent = old.id, old.seq, old.sent
        session.identified = True
        self.sessions.remove(old)
        await session.replay_after(int(data.get("seq") or 0))

    def create_message(self, channel_id: int, body: dict, files: dict[str, bytes],
                       viewer: str | None = None) -> Message:
        """Validate and store a message the bot sent, the way Discord would."""
        check_components(body.get("components") or [])
        check_files(files, self.upload_limit)
        check_content(body.get("content"))
        payload = payloads.message(self.ids.next(), channel_id, self.guild_id, self.bot, body,
                                   self.clock.iso())
        message = Message(payload, files=dict(files))
        self._attach(message, files, body)
        self._mention(message, body.get("allowed_mentions"))
        if viewer is not None:
            payload["_viewer"] = viewer
        if body.get("nonce"):
            payload["_nonce"] = str(body["nonce"])
        self.messages[message.id] = message
        return message

    def same_nonce(self, channel_id: int, body: dict) -> Message | None:
        """The bot's earlier message with this nonce, when enforce_nonce asks Discord to
        return it instead of posting again (within a few minutes)."""
        if not body.get("enforce_nonce") or not body.get("nonce"):
            return None
        return next((m for m in self.messages.values()
                     if m.payload.get("_nonce") == str(body["nonce"])
                     and int(m.payload["channel_id"]) == channel_id), None)

    def edit_message(self, message: Message, body: dict, files: dict[str, bytes]) -> Message:
        check_components(body.get("components") or [])
        check_files(files, self.upload_limit)
        check_content(body.get("content"))
        for key in ("content", "embeds", "components", "flags"):
            if key in body and body[key] is not None:
                message.payload[key] = body[key]
        if files:
            message.files = dict(files)
            self._attach(message, files, body)
        message.payload["edited_timestamp"] = self.clock.iso()
        return message

    def _attach(self, message: Message, files: dict[str, bytes], body: dict) -> None:
        channel_id = message.payload["channel_id"]
        message.payload["attachments"] = [
            payloads.attachment(self.ids.next(), name, data,
                                f"http://127.0.0.1:{self.port}/attachments/{channel_id}/"
                                f"{message.id}/{name}", None)
            for name, data in files.items()]

    def _mention(self, message: Message, allowed: dict | None) -> None:
        message.pinged = resolve_mentions(message.content, allowed)
        message.payload["mention_everyone"] = message.pinged["everyone"]
        message.payload["mentions"] = [u for u in self.users.values()
                                       if int(u["id"]) in message.pinged["users"]]
        message.payload["mention_roles"] = [str(r) for r in message.pinged["roles"]]

    def public(self, message: Message) -> dict:
        """The message payload as Discord sends it (without the double's own notes)."""
        return {k: v for k, v in message.payload.items() if not k.startswith("_")}
