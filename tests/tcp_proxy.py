"""A TCP proxy on loopback that a test can cut and restore: to the process behind it, the
server went away (connections reset, new ones refused) and came back on the same address.
The machine's own server is never touched."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class TcpProxy:
    def __init__(self, host: str, port: int, socket_path: str | None = None):
        self.target, self.socket_path = (host, port), socket_path
        self.port = 0  # chosen by the system at the first start, kept afterwards
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        parts = urlsplit(url)
        # The embedded PostgreSQL (pgserver) listens on a Unix socket: ?host=/its/folder.
        folder = dict(parse_qsl(parts.query)).get("host", "")
        socket_path = f"{folder}/.s.PGSQL.{parts.port or 5432}" if folder.startswith("/") else None
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432, socket_path)

    def url(self, url: str) -> str:
        """url, through this proxy."""
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "host"])
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1
                                         else host, query=query))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _pipe(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await (
                asyncio.open_unix_connection(self.socket_path) if self.socket_path
                else asyncio.open_connection(*self.target))
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, server_writer))
        try:
            await asyncio.gather(_copy(client_reader, server_writer),
                                 _copy(server_reader, client_writer))
        finally:
            self._writers.difference_update((client_writer, server_writer))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
