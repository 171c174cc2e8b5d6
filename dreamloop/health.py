"""The HTTP endpoint of every dreamloop process: /metrics, /livez and /readyz.

Torch-free (aiohttp, which discord.py brings, and prometheus-client), so the worker serves
it before it imports torch and loads its models: /readyz says 503 all that time.

- /metrics: the process's own Prometheus registry, in the text format.
- /livez: 200 while the process's event loop runs and answers (a loop blocked or a process
  that is stuck does not answer at all); 503 once its main work has ended.
- /readyz: 200 when every check names nothing missing, else 503 with what is missing; with
  no check yet (the process is still starting) 503.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

BOT_PORT = 9100  # DREAMLOOP_METRICS_PORT's default for `dreamloop bot` and `dreamloop run`
WORKER_PORT = 9101  # and for `dreamloop worker`, so both fit on one host


async def _nothing_to_read() -> None:
    return None


@dataclass
class Health:
    registry: CollectorRegistry
    # Each says what is not ready yet, in words (empty: ready); the bot and the pools add
    # theirs once they exist.
    checks: list[Callable[[], Awaitable[list[str]]]] = field(default_factory=list)
    # Reads gauges that live elsewhere (Redis, PostgreSQL) just before each scrape.
    before_scrape: Callable[[], Awaitable[None]] = _nothing_to_read
    live: bool = field(default=True)  # set False when the process's main work has ended

    async def metrics(self, request: web.Request) -> web.Response:
        try:
            await self.before_scrape()
        except Exception as error:  # a scrape still shows the counters, and says why not
            log.warning("metrics: reading the backlog failed (%s)", error)
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def livez(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.live else 503,
                            text="live\n" if self.live else "stopped\n")

    async def readyz(self, request: web.Request) -> web.Response:
        missing = [m for check in self.checks for m in await check()] or (
            [] if self.checks else ["starting"])
        if missing:
            return web.Response(status=503, text="not ready: " + "; ".join(missing) + "\n")
        return web.Response(text="ready\n")


@contextlib.asynccontextmanager
async def serving(health: Health, port: int) -> AsyncIterator[None]:
    """Serve health on every interface at port for the block's length; port 0: not at all."""
    if port == 0:
        yield
        return
    app = web.Application()
    app.add_routes([web.get("/metrics", health.metrics), web.get("/livez", health.livez),
                    web.get("/readyz", health.readyz)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, port=port).start()
        log.info("metrics and health on port %d: /metrics /livez /readyz", port)
        yield
    finally:
        await runner.cleanup()
