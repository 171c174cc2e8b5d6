"""Connecting to Redis: the configured server, or an embedded one under the data folder."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from generation import embedded_redis

# The embedded servers this process has joined: folder → socket path.
_EMBEDDED: dict[Path, str] = {}


def connect_redis(url: str) -> redis.Redis:
    """A client that decodes replies to text, notices dead connections, and retries a
    command a few times (with backoff) when Redis restarts under it.

    A retried XADD may add a job twice; delivery stays exactly-once because completion
    in PostgreSQL is conditional (db/jobs.py).
    """
    # encoding_errors="replace": one entry of bad bytes must not make every read fail;
    # socket_timeout: a half-open connection must not block a read forever (> any BLOCK).
    return redis.from_url(
        url, decode_responses=True, encoding_errors="replace", health_check_interval=10,
        socket_connect_timeout=5, socket_timeout=15,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=5),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError])


async def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key under prefix (a test's, a benchmark's or a command's own); how many."""
    stale = [key async for key in client.scan_iter(match=f"{prefix}*")]
    return await client.delete(*stale) if stale else 0


def start_embedded_redis(data_dir: Path) -> str:
    """Start (or join) a Redis server under data_dir/redis; returns its URL. It stops when
    the last dreamloop process using it exits (generation/embedded_redis.py).

    Append-only persistence (fsync every second) keeps queued work across restarts, and
    noeviction makes Redis refuse writes rather than silently drop jobs when full.
    """
    folder = (data_dir / "redis").resolve()
    if folder not in _EMBEDDED:
        _EMBEDDED[folder] = embedded_redis.join(folder)
    return f"unix://{_EMBEDDED[folder]}"
