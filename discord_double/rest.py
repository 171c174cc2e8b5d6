"""The REST API under /api/v10, answering the way Discord does (README.md lists sources)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from aiohttp import web

from discord_double import faults
from discord_double.modals import check_modal
from discord_double.model import (
    CALLBACK_DEADLINE_S,
    TOKEN_LIFETIME_S,
    DiscordError,
    Interaction,
    Message,
    invalid_webhook_token,
    unknown_interaction,
)

if TYPE_CHECKING:
    from discord_double.double import DiscordDouble

API = "/api/v10"
# Interaction callback types (discord-api-docs, receiving-and-responding).
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, AUTOCOMPLETE, MODAL = 4, 5, 6, 7, 8, 9
LOADING = 1 << 7


def discord_json(data, status: int = 200) -> web.Response:
    # Exactly "application/json", as Discord sends: discord.py compares the header verbatim
    # and treats anything else (aiohttp adds "; charset=utf-8" to text) as plain text.
    return web.Response(body=json.dumps(data).encode(), status=status,
                        content_type="application/json")


def build_app(double: DiscordDouble) -> web.Application:
    # Discord takes bodies well past aiohttp's 1 MiB default; the upload limit is ours to check.
    app = web.Application(client_max_size=256 * 1024 * 1024,
                          middlewares=[faults.middleware(double.faults, API),
                                       _discord_errors(double), _rate_limit_headers])
    handlers = _Handlers(double)
    app.router.add_get("/gateway", handlers.gateway)
    app.router.add_get("/attachments/{channel}/{message}/{name}", handlers.attachment)
    app.router.add_get("/ephemeral-attachments/{id}/{name}", handlers.upload)
    app.router.add_get("/redirect", handlers.redirect)
    for method, path, handler in handlers.routes():
        app.router.add_route(method, API + path, handler)
    app.router.add_route("*", "/{tail:.*}", handlers.not_implemented)
    return app


def _discord_errors(double: DiscordDouble):
    @web.middleware
    async def middleware(request: web.Request, handler):
        if _needs_bot_token(request) and request.headers.get("Authorization") != (
                f"Bot {double.token}"):
            return discord_json({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            return await handler(request)
        except DiscordError as error:
            return discord_json(error.body(), status=error.status)

    return middleware


def _needs_bot_token(request: web.Request) -> bool:
    path = request.path
    return path.startswith(API) and not path.startswith((f"{API}/interactions/",
                                                         f"{API}/webhooks/"))


@web.middleware
async def _rate_limit_headers(request: web.Request, handler):
    response = await handler(request)
    # Plenty left in every bucket: discord.py reads these and would wait on Remaining 0.
    response.headers.update({
        "X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}", "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": request.path.rsplit("/", 1)[0]})
    return response


async def read_body(request: web.Request) -> tuple[dict | list, dict[str, bytes]]:
    """JSON, or multipart with payload_json and files[n] parts, as discord.py sends."""
    if request.content_type.startswith("multipart/"):
        body, files = {}, {}
        async for part in await request.multipart():
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                files[part.filename] = bytes(await part.read())
        return body, files
    if request.body_exists:
        return await request.json(), {}
    return {}, {}


class _Handlers:
    def __init__(self, double: DiscordDouble):
        self.double = double

    def routes(self) -> list[tuple[str, str, object]]:
        return [
            ("GET", "/users/@me", self.me),
            ("GET", "/oauth2/applications/@me", self.application),
            ("GET", "/applications/@me", self.application),
            ("GET", "/gateway/bot", self.gateway_bot),
            ("GET", "/gateway", self.gateway_bot),
            ("PUT", "/applications/{app}/commands", self.sync_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self.sync_commands),
            ("GET", "/applications/{app}/commands", self.list_commands),
            ("GET", "/applications/{app}/guilds/{guild}/commands", self.list_commands),
            ("POST", "/interactions/{id}/{token}/callback", self.callback),
            ("POST", "/webhooks/{app}/{token}", self.follow_up),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self.webhook_get),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self.webhook_edit),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self.webhook_delete),
            ("GET", "/channels/{channel}", self.channel),
            ("POST", "/channels/{channel}/messages", self.create_message),
            ("GET", "/channels/{channel}/messages/{message}", self.get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self.edit_message),
            ("DELETE", "/channels/{channel}/messages/{message}", self.delete_message),
        ]

    # -- login and gateway ------------------------------------------------------------------

    async def me(self, request):
        return discord_json(self.double.bot)

    async def application(self, request):
        d = self.double
        return discord_json({
            "id": str(d.application_id), "name": "dreamloop test", "icon": None,
            "description": "", "rpc_origins": [], "bot_public": True,
            "bot_require_code_grant": False, "owner": d.users["alice"], "team": None,
            "summary": "", "verify_key": "0" * 64, "flags": 0, "bot": d.bot,
            "interactions_endpoint_url": None, "tags": [], "redirect_uris": []})

    async def gateway_bot(self, request):
        return discord_json({"url": self.double.gateway_url, "shards": 1,
                                  "session_start_limit": {"total": 1000, "remaining": 999,
                                                          "reset_after": 0,
                                                          "max_concurrency": 1}})

    async def gateway(self, request):
        from discord_double.gateway import GatewaySession

        session = GatewaySession(self.double)
        self.double.sessions.append(session)
        try:
            return await session.serve(request)
        finally:
            session.socket = None

    # -- application commands ---------------------------------------------------------------

    async def sync_commands(self, request):
        """Bulk overwrite: the list replaces what was there; a kept name keeps its id."""
        guild = int(request.match_info["guild"]) if "guild" in request.match_info else None
        body, _ = await read_body(request)
        old = {c["name"]: c["id"] for c in self.double.commands.get(guild, [])}
        commands = [c | {"id": old.get(c["name"]) or str(self.double.ids.next()),
                         "application_id": str(self.double.application_id), "version": "1",
                         "guild_id": str(guild) if guild else None} for c in body]
        self.double.commands[guild] = commands
        self.double.command_syncs += 1
        return discord_json(commands)

    async def list_commands(self, request):
        guild = int(request.match_info["guild"]) if "guild" in request.match_info else None
        return discord_json(self.double.commands.get(guild, []))

    # -- interactions -----------------------------------------------------------------------

    async def callback(self, request):
        interaction = self.double.interactions.get(int(request.match_info["id"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise unknown_interaction()
        elapsed = self.double.clock.now() - interaction.created_at
        try:
            if elapsed > CALLBACK_DEADLINE_S:
                raise unknown_interaction()
            if interaction.callbacks:
                raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
            body, files = await read_body(request)
            message = self._respond(interaction, body, files)
        except DiscordError as error:
            interaction.errors.append(error)
            raise
        interaction.callbacks.append((elapsed, body))
        if request.query.get("with_response") not in ("1", "true"):
            return web.Response(status=204)
        return discord_json(self._callback_response(interaction, body, message))

    def _respond(self, interaction: Interaction, body: dict, files) -> Message | None:
        kind, data = body.get("type"), body.get("data") or {}
        viewer = interaction.payload["_member"] if data.get("flags", 0) & 64 else None
        if kind == MESSAGE:
            message = self.double.create_message(interaction.channel_id, data, files, viewer)
        elif kind == DEFERRED_MESSAGE:
            message = self.double.create_message(
                interaction.channel_id, {"flags": (data.get("flags") or 0) | LOADING}, {},
                viewer)
        elif kind in (UPDATE, DEFERRED_UPDATE):
            message = self.double.messages[int(interaction.payload["message"]["id"])]
            if kind == UPDATE:
                self.double.edit_message(message, data, files)
        elif kind == MODAL:
            check_modal(data)
            interaction.modal = data
            return None
        elif kind == AUTOCOMPLETE:
            return None
        else:
            raise DiscordError(400, 50035, "Invalid Form Body",
                               {"type": f"Value {kind!r} is not a valid callback type."})
        interaction.original_message_id = message.id
        return message

    def _callback_response(self, interaction: Interaction, body: dict,
                           message: Message | None) -> dict:
        summary = {"id": str(interaction.id), "type": interaction.kind,
                   "response_message_loading": body.get("type") == DEFERRED_MESSAGE,
                   "response_message_ephemeral": bool((body.get("data") or {}).get("flags", 0)
                                                      & 64)}
        if message is None:
            return {"interaction": summary}
        summary["response_message_id"] = str(message.id)
        return {"interaction": summary,
                "resource": {"type": body["type"], "message": self.double.public(message)}}

    def _live_interaction(self, request) -> Interaction:
        """The interaction behind a webhook token, refused after 15 minutes."""
        token = request.match_info["token"]
        interaction = next((i for i in self.double.interactions.values() if i.token == token),
                           None)
        if interaction is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if self.double.clock.now() - interaction.created_at > TOKEN_LIFETIME_S:
            interaction.errors.append(invalid_webhook_token())
            raise invalid_webhook_token()
        return interaction

    def _webhook_message(self, request, interaction: Interaction) -> Message:
        ref = request.match_info["message"]
        message_id = interaction.original_message_id if ref == "@original" else int(ref)
        message = self.double.messages.get(message_id or 0)
        if message is None or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def follow_up(self, request):
        interaction = self._live_interaction(request)
        body, files = await read_body(request)
        viewer = interaction.payload["_member"] if body.get("flags", 0) & 64 else None
        message = self.double.create_message(interaction.channel_id, body, files, viewer)
        if request.query.get("wait") in ("1", "true", "True"):
            return discord_json(self.double.public(message))
        return web.Response(status=204)

    async def webhook_get(self, request):
        message = self._webhook_message(request, self._live_interaction(request))
        return discord_json(self.double.public(message))

    async def webhook_edit(self, request):
        interaction = self._live_interaction(request)
        message = self._webhook_message(request, interaction)
        body, files = await read_body(request)
        body["flags"] = message.payload["flags"] & ~LOADING  # an edit ends "thinking…"
        return discord_json(self.double.public(
            self.double.edit_message(message, body, files)))

    async def webhook_delete(self, request):
        self._webhook_message(request, self._live_interaction(request)).deleted = True
        return web.Response(status=204)

    # -- channels and messages --------------------------------------------------------------

    def _channel_id(self, request) -> int:
        channel_id = int(request.match_info["channel"])
        if all(int(c["id"]) != channel_id for c in self.double.channels.values()):
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    def _message(self, request) -> Message:
        self._channel_id(request)
        message = self.double.messages.get(int(request.match_info["message"]))
        if message is None or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    async def channel(self, request):
        channel_id = self._channel_id(request)
        return discord_json(next(c for c in self.double.channels.values()
                                      if int(c["id"]) == channel_id))

    async def create_message(self, request):
        channel_id = self._channel_id(request)
        if channel_id in self.double.no_access:
            self.double.refused[channel_id] = self.double.refused.get(channel_id, 0) + 1
            raise DiscordError(403, 50001, "Missing Access")
        body, files = await read_body(request)
        repeat = self.double.same_nonce(channel_id, body)
        if repeat is not None:  # enforce_nonce: the first message comes back, nothing new
            return discord_json(self.double.public(repeat))
        message = self.double.create_message(channel_id, body, files)
        await self.double.dispatch("MESSAGE_CREATE", self.double.public(message))
        return discord_json(self.double.public(message))

    async def get_message(self, request):
        return discord_json(self.double.public(self._message(request)))

    async def edit_message(self, request):
        message = self._message(request)
        body, files = await read_body(request)
        edited = self.double.edit_message(message, body, files)
        await self.double.dispatch("MESSAGE_UPDATE", self.double.public(edited))
        return discord_json(self.double.public(edited))

    async def delete_message(self, request):
        self._message(request).deleted = True
        return web.Response(status=204)

    async def attachment(self, request):
        message = self.double.messages.get(int(request.match_info["message"]))
        data = message.files.get(request.match_info["name"]) if message else None
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data)

    async def upload(self, request):
        data = self.double.uploads.get(f"{request.match_info['id']}/{request.match_info['name']}")
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data)

    async def redirect(self, request):
        """A link that sends its reader elsewhere (a bot must not follow it off Discord)."""
        raise web.HTTPFound(request.query["to"])

    async def not_implemented(self, request):
        self.double.unhandled.append(f"{request.method} {request.path}")
        return discord_json({"message": "404: Not Found", "code": 0}, status=404)
