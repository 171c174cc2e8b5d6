"""Faults a test arms on the double: Discord's bad moments, answered as Discord answers.

- `double.fail_next(method, route, count, status=503, skip=0)`: after `skip` requests to
  the route, the next `count` get a 5xx (`{"message": "503: Service Unavailable",
  "code": 0}`) or, with status 429, a rate limit: Discord's JSON body (`message`,
  `retry_after`, `global`), the `Retry-After` header (whole seconds, rounded up),
  `X-RateLimit-*` with Remaining 0, and the `Via` header Discord's responses carry
  (discord.py takes a 429 without it for a Cloudflare ban and does not wait it out).
  discord-api-docs, topics/rate-limits.
- `double.hold(method, route)`: requests to the route wait until the returned event is
  set (a slow or stuck request), then are answered normally.

A route is written as Discord's documentation writes it, "/channels/{channel}/messages",
with {name} matching one path segment, or with real ids to aim at one message.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus

from aiohttp import web


@dataclass
class Fault:
    method: str
    pattern: re.Pattern
    count: int = 0  # requests still to fail
    status: int = 503
    retry_after: float = 1.0
    gate: asyncio.Event | None = None  # held until set
    skip: int = 0  # matching requests answered normally before the fault starts
    hits: list[str] = field(default_factory=list)  # paths it answered or held

    def matches(self, request: web.Request, api: str) -> bool:
        path = request.path.removeprefix(api)
        return request.method == self.method and bool(self.pattern.fullmatch(path))


def route_pattern(route: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route)))


def error_response(fault: Fault) -> web.Response:
    from discord_double.rest import discord_json

    if fault.status != 429:
        phrase = HTTPStatus(fault.status).phrase
        return discord_json({"message": f"{fault.status}: {phrase}", "code": 0},
                            status=fault.status)
    response = discord_json({"message": "You are being rate limited.",
                             "retry_after": fault.retry_after, "global": False, "code": 0},
                            status=429)
    response.headers.update({
        "Retry-After": str(math.ceil(fault.retry_after)), "Via": "1.1 google",
        "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}", "X-RateLimit-Scope": "user"})
    return response


def middleware(faults: list[Fault], api: str):
    @web.middleware
    async def answer(request: web.Request, handler):
        for fault in list(faults):
            if not fault.matches(request, api):
                continue
            if fault.skip > 0:
                fault.skip -= 1
            elif fault.gate is not None:
                fault.hits.append(request.path)
                await fault.gate.wait()
            elif fault.count > 0:
                fault.count -= 1
                fault.hits.append(request.path)
                return error_response(fault)
        return await handler(request)

    return answer
