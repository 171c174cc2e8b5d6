"""The gateway websocket: HELLO, IDENTIFY → READY and GUILD_CREATE, heartbeats, RESUME,
zlib-stream (or zstd-stream) compression, and dispatches."""

from __future__ import annotations

import json
import secrets
import zlib
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from discord_double.double import DiscordDouble

HEARTBEAT_INTERVAL_MS = 41_250
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = (
    0, 1, 2, 6, 7, 9, 10, 11)


class _Compressor:
    """One compression context for the life of the connection, as Discord keeps."""

    def __init__(self, kind: str | None):
        self.kind = kind
        if kind == "zlib-stream":
            self.context = zlib.compressobj()
        elif kind == "zstd-stream":
            import zstandard

            self.context = zstandard.ZstdCompressor().compressobj()

    def pack(self, text: str) -> bytes | str:
        if self.kind == "zlib-stream":
            return self.context.compress(text.encode()) + self.context.flush(zlib.Z_SYNC_FLUSH)
        if self.kind == "zstd-stream":
            import zstandard

            return self.context.compress(text.encode()) + self.context.flush(
                zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return text


class GatewaySession:
    """One bot connection. Dispatches are numbered and kept, so RESUME can replay them."""

    def __init__(self, double: DiscordDouble):
        self.double = double
        self.id = secrets.token_hex(16)
        self.seq = 0
        self.sent: list[dict] = []
        self.socket: web.WebSocketResponse | None = None
        self.compressor = _Compressor(None)
        self.identified = False

    async def send(self, op: int, data, event: str | None = None) -> None:
        payload = {"op": op, "d": data, "s": None, "t": event}
        if op == DISPATCH:
            self.seq += 1
            payload["s"] = self.seq
            self.sent.append(payload)
        await self._write(payload)

    async def _write(self, payload: dict) -> None:
        if self.socket is None or self.socket.closed:
            return
        packed = self.compressor.pack(json.dumps(payload))
        if isinstance(packed, bytes):
            await self.socket.send_bytes(packed)
        else:
            await self.socket.send_str(packed)

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        self.socket = web.WebSocketResponse()
        await self.socket.prepare(request)
        self.compressor = _Compressor(request.query.get("compress"))
        await self.send(HELLO, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
        async for message in self.socket:
            if message.type != WSMsgType.TEXT:
                continue
            await self._handle(json.loads(message.data))
        return self.socket

    async def _handle(self, payload: dict) -> None:
        op, data = payload["op"], payload.get("d")
        if op == HEARTBEAT:
            await self.send(HEARTBEAT_ACK, None)
        elif op == IDENTIFY:
            await self._identify(data)
        elif op == RESUME:
            await self.double.resume(self, data)

    async def _identify(self, data: dict) -> None:
        if data.get("token") != self.double.token:
            await self.socket.close(code=4004, message=b"Authentication failed.")
            return
        self.identified = True
        self.double.identify_count += 1
        await self.send(DISPATCH, self.double.ready_payload(self), "READY")
        await self.send(DISPATCH, self.double.guild_payload(), "GUILD_CREATE")

    async def replay_after(self, seq: int) -> None:
        for payload in [p for p in self.sent if p["s"] > seq]:
            await self._write(payload)
        await self.send(DISPATCH, {}, "RESUMED")
