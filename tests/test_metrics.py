"""Metrics and health end to end: the real bot and worker processes, their endpoints on free
ports, a few jobs through the Discord double, the scrapes parsed as Prometheus parses them."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from dreamloop.health import Health, serving
from tests.bot_stack import BotProcess, is_grid, reply_to, stack_env, sync_commands
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(300)
DASHBOARD = Path(__file__).parent.parent / "deploy" / "grafana" / "dreamloop.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def get(port: int, path: str) -> tuple[int, str] | None:
    """(status, body), or None while nothing listens on the port yet."""
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}{path}") as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectorError:
        return None


async def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    status, text = await get(port, "/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def statuses_until(port: int, path: str, want: int, timeout: float = 120) -> list[int]:
    """The distinct statuses path answered, in order, until it answered want."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] != want:
        assert time.monotonic() < deadline, f"{path} never answered {want}: {seen}"
        answer = await get(port, path)
        if answer is not None and (not seen or seen[-1] != answer[0]):
            seen.append(answer[0])
        await asyncio.sleep(0.05)
    return seen


async def until(check, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} never held"
        await asyncio.sleep(0.2)


@pytest.fixture
async def bot_env(double, db, database_url, db_schema, redis_url, keys, cli_env, tmp_path):
    env = stack_env(double, database_url, db_schema, redis_url, keys, cli_env, tmp_path)
    await sync_commands(double, env)
    return env


async def test_bot_and_worker_metrics_after_a_few_jobs(double, db, bot_env, tmp_path):
    bot_port, worker_port = free_port(), free_port()
    bot = BotProcess(bot_env | {"DREAMLOOP_METRICS_PORT": str(bot_port)}, tmp_path / "bot.log")
    bot.start()
    worker = None
    try:
        assert (await statuses_until(bot_port, "/readyz", 200))[-1] == 200
        assert (await get(bot_port, "/livez"))[0] == 200
        jobs = await _three_jobs_no_worker(double, db, bot_port)
        cancel = await double.slash("alice", "general", "cancel", job=jobs[2])
        assert await reply_to(double, cancel) == f"Job {jobs[2]} is cancelled."
        # The two grids' first posts fail: counted by status and Discord's code, retried.
        double.fail_next("POST", "/channels/{channel}/messages", 2, status=503)
        worker = Worker(bot_env | {"DREAMLOOP_METRICS_PORT": str(worker_port)},
                        tmp_path / "worker.log")
        # Not ready while torch loads and the model loads and warms; then ready.
        assert await statuses_until(worker_port, "/readyz", 200) == [503, 200]
        grids = await _grids(double, 2)
        await double.click("bob", grids[0], f"{grids[0].custom_ids()[1]}")  # U2
        await double.wait_for_message("general", lambda m: "— Image #2 <@" in m.content)
        bot_samples = await _bot_checked(db, bot_port, jobs)
        worker_samples = await _worker_checked(db, worker_port, jobs)
        _dashboard_queries_exist(bot_samples | worker_samples)
    finally:
        bot.kill()
        if worker is not None:
            worker.stop()


async def _three_jobs_no_worker(double, db, port: int) -> list[int]:
    """Three jobs put while no worker runs: dispatched into their stream, waiting there."""
    ids = []
    for n in range(3):
        asked = await double.slash("alice", "general", "imagine",
                                   prompt=f"a fox number {n} --seed {n}", model="tiny-random")
        await double.wait_for_callback(asked)
        ids.append(asked.id)

    async def all_dispatched() -> bool:
        async with db.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM jobs WHERE dispatched_at IS NOT "
                                       "NULL") == 3
    await until(all_dispatched, what="three jobs dispatched")
    await double._until(lambda: sum("**a fox number" in m.content for m in
                                    double.channel_messages("general")) == 3, 30,
                        "three status messages")
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT id, lane FROM jobs ORDER BY id")
    [lane] = {row["lane"] for row in rows}
    samples = await scrape(port)
    assert value(samples, "dreamloop_queue_undelivered", model="tiny-random", lane=lane) == 3
    assert value(samples, "dreamloop_queue_pending", model="tiny-random", lane=lane) == 0
    assert value(samples, "dreamloop_jobs_waiting", model="tiny-random", lane=lane) == 0
    return [row["id"] for row in rows]


async def _grids(double, count: int) -> list:
    await double._until(lambda: sum(map(is_grid, double.channel_messages("general"))) == count,
                        120, f"{count} grids")
    return [m for m in double.channel_messages("general") if is_grid(m)]


async def _bot_checked(db, port: int, jobs: list[int]) -> dict:
    async def counted() -> bool:  # the vote and both posts are recorded before the reply
        samples = await scrape(port)
        return value(samples, "dreamloop_votes_total", kind="upscale_pick") == 1
    await until(counted, what="the U pick counted")
    samples = await scrape(port)
    async with db.acquire() as conn:
        queue_ms = [r["queue_ms"] for r in await conn.fetch(
            "SELECT queue_ms FROM jobs WHERE status = 'succeeded' AND id = ANY($1)", jobs)]
    assert len(queue_ms) == 2
    assert value(samples, "dreamloop_jobs_total", kind="imagine", outcome="succeeded") == 2
    assert value(samples, "dreamloop_jobs_total", kind="imagine", outcome="cancelled") == 1
    assert value(samples, "dreamloop_jobs_total", kind="imagine", outcome="failed") is None
    assert value(samples, "dreamloop_dead_lettered_total") == 0
    assert value(samples, "dreamloop_job_wait_seconds_count", kind="imagine") == 2
    assert value(samples, "dreamloop_job_wait_seconds_sum", kind="imagine") == pytest.approx(
        sum(queue_ms) / 1000)
    assert value(samples, "dreamloop_delivery_seconds_count", kind="imagine") == 2
    # The first grid waited out two 503s: 1 s, then 2 s (bot/retry.py).
    assert value(samples, "dreamloop_delivery_seconds_sum", kind="imagine") >= 3
    assert value(samples, "dreamloop_discord_api_errors_total", status="503", code="0") == 2
    assert value(samples, "dreamloop_queue_undelivered", model="tiny-random", lane="fast") == 0
    assert value(samples, "dreamloop_queue_pending", model="tiny-random", lane="fast") == 0
    return samples


async def _worker_checked(db, port: int, jobs: list[int]) -> dict:
    samples = await scrape(port)
    async with db.acquire() as conn:
        gpu_ms = [r["gpu_ms"] for r in await conn.fetch(
            "SELECT gpu_ms FROM jobs WHERE status = 'succeeded' AND id = ANY($1)", jobs)]
    job = {"model": "tiny-random", "kind": "imagine"}
    assert value(samples, "dreamloop_worker_jobs_total", outcome="succeeded", **job) == 2
    assert value(samples, "dreamloop_worker_jobs_total", outcome="cancelled", **job) == 1
    assert value(samples, "dreamloop_worker_gpu_seconds_count", **job) == 2
    assert value(samples, "dreamloop_worker_gpu_seconds_sum", **job) == pytest.approx(
        sum(gpu_ms) / 1000)
    # One XREADGROUP took all three; the cancelled one was skipped: one batch of two.
    assert value(samples, "dreamloop_worker_batch_size_count", model="tiny-random") == 1
    assert value(samples, "dreamloop_worker_batch_size_sum", model="tiny-random") == 2
    assert value(samples, "dreamloop_worker_classify_seconds_count", model="tiny-random") == 2
    assert value(samples, "dreamloop_worker_images_flagged_total", model="tiny-random") == 0
    assert value(samples, "dreamloop_worker_ready") == 1
    assert value(samples, "dreamloop_worker_model_load_seconds", model="tiny-random") > 0
    assert value(samples, "dreamloop_worker_model_warm_seconds", model="tiny-random") > 0
    assert (await get(port, "/livez"))[0] == 200
    return samples


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bdreamloop_[a-z_]+", expr)}


def _dashboard_queries_exist(samples: dict) -> None:
    scraped = {name for name, _ in samples}
    assert dashboard_metrics() - scraped == set()


def test_the_dashboard_asks_for_its_datasource_and_covers_every_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = dashboard["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in dashboard_metrics()}
    assert families == {
        "dreamloop_queue_undelivered", "dreamloop_queue_pending", "dreamloop_jobs_waiting",
        "dreamloop_job_wait_seconds", "dreamloop_delivery_seconds", "dreamloop_jobs",
        "dreamloop_dead_lettered", "dreamloop_discord_api_errors", "dreamloop_votes",
        "dreamloop_worker_gpu_seconds", "dreamloop_worker_batch_size", "dreamloop_worker_jobs",
        "dreamloop_worker_model_load_seconds", "dreamloop_worker_model_warm_seconds",
        "dreamloop_worker_ready", "dreamloop_worker_classify_seconds",
        "dreamloop_worker_images_flagged"}


async def test_readyz_says_what_is_missing_and_port_0_serves_nothing():
    health = Health(CollectorRegistry())
    port = free_port()
    async with serving(health, port):
        assert await get(port, "/readyz") == (503, "not ready: starting\n")  # no check yet

        async def redis_down() -> list[str]:
            return ["Redis does not answer (ConnectionError)"]

        async def fine() -> list[str]:
            return []

        health.checks += [fine, redis_down]
        assert await get(port, "/readyz") == (
            503, "not ready: Redis does not answer (ConnectionError)\n")
        health.checks.remove(redis_down)
        assert await get(port, "/readyz") == (200, "ready\n")
        assert await get(port, "/livez") == (200, "live\n")
        health.live = False
        assert await get(port, "/livez") == (503, "stopped\n")
    assert await get(port, "/livez") is None
    async with serving(health, 0):
        assert await get(port, "/livez") is None
