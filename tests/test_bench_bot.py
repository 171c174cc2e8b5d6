"""`dreamloop bench bot`, run as a person runs it, small: its figures, and nothing left behind.

On the servers named by DREAMLOOP_TEST_DATABASE_URL / DREAMLOOP_TEST_REDIS_URL when set,
otherwise on the bench's own embedded ones. Figures only: no assertion is about time.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis

pytestmark = pytest.mark.timeout(300)

MEMBERS = 3
LATENCIES = [f"{name}_ms_{p}_{n}" for name in ("ack", "queued", "bare_ack")
             for p in ("p50", "p99") for n in (1, MEMBERS)] + [
    f"{name}_ms_{p}" for name in ("deliver", "bare_upload") for p in ("p50", "p99")]
RATIOS = [f"ack_vs_bare_p50_{n}" for n in (1, MEMBERS)]


def bench_schemas(url: str | None) -> set[str]:
    if url is None:
        return set()

    async def names() -> set[str]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch("SELECT schema_name FROM information_schema.schemata "
                                          "WHERE schema_name LIKE 'bench_bot_%'")
        finally:
            await connection.close()
        return {row["schema_name"] for row in rows}

    return asyncio.run(names())


def bench_keys(url: str | None) -> list[str]:
    if url is None:
        return []
    with redis.Redis.from_url(url) as client:
        return list(client.scan_iter(match="dreamloop-bench-bot:*"))


def processes_using(folder: Path) -> list[str]:
    """Command lines of live processes that mention folder (an embedded server left on)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        if str(folder) in line:
            found.append(line)
    return found


@pytest.fixture
def temp():
    """The bench's TMPDIR: short, since an embedded server's socket path must be."""
    folder = Path(tempfile.mkdtemp(prefix="dlb-"))
    yield folder
    shutil.rmtree(folder)


def test_bench_bot_ends_with_its_figures_and_leaves_nothing_behind(cli_env, temp):
    database_url = os.environ.get("DREAMLOOP_TEST_DATABASE_URL")
    redis_url = os.environ.get("DREAMLOOP_TEST_REDIS_URL")
    env = cli_env | {"TMPDIR": str(temp)} | (
        {"DREAMLOOP_DATABASE_URL": database_url} if database_url else {}) | (
        {"DREAMLOOP_REDIS_URL": redis_url} if redis_url else {})
    schemas_before = bench_schemas(database_url)

    run = subprocess.run(
        [str(Path(sys.executable).parent / "dreamloop"), "bench", "bot", "--members",
         str(MEMBERS), "--rounds", "1", "--results", "3", "--json"],
        env=env, capture_output=True, text=True, timeout=280)

    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    for key in LATENCIES + RATIOS + ["grid_bytes"]:
        value = figures[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
    assert (figures["members"], figures["rounds"], figures["results"]) == (MEMBERS, 1, 3)
    assert "upload" in figures["deliver_includes"]
    assert "deliver_minus_bare_upload_ms_p50" in figures
    assert "members at once" not in run.stdout  # progress goes to stderr, dim
    assert "1 member(s) at once" in run.stderr

    assert bench_schemas(database_url) == schemas_before
    assert bench_keys(redis_url) == []
    assert [p.name for p in temp.iterdir() if p.name.startswith("dreamloop-bench-bot-")] == []
    assert processes_using(temp) == []
