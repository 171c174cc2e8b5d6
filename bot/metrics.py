"""The bot's Prometheus metrics: the queue's backlog, waits, delivery, outcomes, Discord's
refusals and members' votes.

Each BotMetrics owns its own registry (several bots in one test process stay apart);
`dreamloop bot` serves it over HTTP (dreamloop/health.py). The backlog gauges are read
from Redis and PostgreSQL when Prometheus scrapes (refresh), so they are never stale.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import redis.asyncio as redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from db.metrics import ping, waiting_counts
from generation.keys import LANES, WORKER_GROUP

# From a job that starts at once to one waiting through a long relax queue.
WAIT_SECONDS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
DELIVERY_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class BotMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        on = {"registry": self.registry}
        stream = ["model", "lane"]
        self.undelivered = Gauge("dreamloop_queue_undelivered", "Entries in a job stream no "
                                 "worker has taken yet (the consumer group's lag)", stream, **on)
        self.pending = Gauge("dreamloop_queue_pending", "Entries of a job stream a worker "
                             "holds and has not finished", stream, **on)
        self.waiting = Gauge("dreamloop_jobs_waiting", "Jobs waiting in PostgreSQL for the "
                             "dispatcher to put them in their stream", stream, **on)
        self.wait_seconds = Histogram("dreamloop_job_wait_seconds", "Job created to sampling "
                                      "started, of jobs that succeeded", ["kind"],
                                      buckets=WAIT_SECONDS, **on)
        self.delivery_seconds = Histogram("dreamloop_delivery_seconds", "Worker finished to "
                                          "result posted in the channel", ["kind"],
                                          buckets=DELIVERY_SECONDS, **on)
        self.outcomes = Counter("dreamloop_jobs", "Jobs ended, by kind and outcome (succeeded, "
                                "failed, cancelled, dead)", ["kind", "outcome"], **on)
        self.dead = Counter("dreamloop_dead_lettered", "Jobs delivered to workers too often, "
                            "moved to the dead-letter stream", **on)
        self.discord_errors = Counter("dreamloop_discord_api_errors", "Discord API answers of "
                                      "400 or more, by HTTP status and Discord's error code",
                                      ["status", "code"], **on)
        self.votes = Counter("dreamloop_votes", "Members' feedback: picks, thumbs, re-rolls "
                             "and /rate votes, by kind", ["kind"], **on)

    def ended(self, kind: str, outcome: str) -> None:
        self.outcomes.labels(kind, outcome).inc()
        if outcome == "dead":
            self.dead.inc()

    def delivered(self, kind: str, queue_ms: int | None, finished_ms: int) -> None:
        """A result posted: the worker reported it at finished_ms (epoch ms)."""
        self.ended(kind, "succeeded")
        self.delivery_seconds.labels(kind).observe(max(0.0, time.time() - finished_ms / 1000))
        if queue_ms is not None:
            self.wait_seconds.labels(kind).observe(queue_ms / 1000)

    def http_trace(self) -> aiohttp.TraceConfig:
        """For discord.py's HTTP session (Client(http_trace=…)): every refusal is counted,
        those discord.py retries itself (429, 502) as well as those raised to us."""
        trace = aiohttp.TraceConfig()

        async def on_request_end(session, context, params) -> None:
            response = params.response
            if response.status >= 400:
                self.discord_errors.labels(str(response.status),
                                           await _error_code(response)).inc()

        trace.on_request_end.append(on_request_end)
        return trace

    async def refresh(self, services) -> None:
        """Read the backlog of every stream the registry's models have (at scrape)."""
        async with services.db.acquire() as conn:
            waiting = await waiting_counts(conn)
        streams = {(model, lane) for model in services.registry.models for lane in LANES}
        readings = {}
        for model, lane in sorted(streams | set(waiting)):
            readings[model, lane] = await _stream_backlog(services.queue,
                                                          services.queue.keys.jobs(model, lane))
        for model, lane in readings:
            undelivered, pending = readings[model, lane]
            self.undelivered.labels(model, lane).set(undelivered)
            self.pending.labels(model, lane).set(pending)
            self.waiting.labels(model, lane).set(waiting.get((model, lane), 0))


async def _stream_backlog(queue, stream: str) -> tuple[int, int]:
    """(entries not yet taken, entries taken and not finished); finished ones are deleted."""
    try:
        groups = await queue.redis.xinfo_groups(stream)
    except redis.ResponseError:
        return 0, 0  # no stream yet
    group = next((g for g in groups if g["name"] == WORKER_GROUP), None)
    length = await queue.redis.xlen(stream)
    pending = group["pending"] if group else 0
    return max(0, length - pending), pending


async def _error_code(response: aiohttp.ClientResponse) -> str:
    # Discord's JSON error body carries its code (10062 Unknown interaction, 50013 Missing
    # Permissions, …); read here, discord.py then reads the same cached body.
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


async def not_ready(bot) -> list[str]:
    """What keeps the bot from serving members, in words; empty when it is ready."""
    missing = [] if bot.is_ready() else ["not logged in to Discord yet"]
    try:
        async with bot.services.db.acquire(timeout=2) as conn:
            await asyncio.wait_for(ping(conn), 2)
    except Exception as error:  # any failure means the same: not ready
        missing.append(f"PostgreSQL does not answer ({type(error).__name__})")
    try:
        await asyncio.wait_for(bot.services.queue.redis.ping(), 2)
    except Exception as error:
        missing.append(f"Redis does not answer ({type(error).__name__})")
    return missing
