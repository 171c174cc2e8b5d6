"""`dreamloop bench fairness`, run as a person runs it, very small: it ends with its figures
(light members' p50/p95 wait with 0, 1 and 2 flooders, fifo and drr, and their ratios) and
leaves no key behind. Figures only: no assertion is about time."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

pytestmark = pytest.mark.timeout(600)

FIGURES = [f"light_wait_ms_{p}_{n}_flooders_{policy}" for p in ("p50", "p95")
           for n in (0, 1, 2) for policy in ("fifo", "drr")]
RATIOS = [f"fifo_vs_drr_{p}_{n}_flooders" for p in ("p50", "p95") for n in (0, 1, 2)]


def test_bench_fairness_ends_with_its_figures(cli_env, tmp_path):
    database_url = os.environ.get("DREAMLOOP_TEST_DATABASE_URL")
    redis_url = os.environ.get("DREAMLOOP_TEST_REDIS_URL")
    env = cli_env | (
        {"DREAMLOOP_DATABASE_URL": database_url} if database_url else {}) | (
        {"DREAMLOOP_REDIS_URL": redis_url} if redis_url else {})
    run = subprocess.run(
        [str(Path(sys.executable).parent / "dreamloop"), "bench", "fairness", "--flood-steps",
         "1", "--flood-jobs", "2", "--light-steps", "1", "--light-members", "1",
         "--light-jobs", "1", "--json"], env=env, capture_output=True, text=True, timeout=580)

    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    for key in FIGURES + RATIOS:
        value = figures[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, (
            key, value)
    assert "light_wait_ms_p50_2_flooders_drr" in run.stdout  # the table a person reads
    assert "flooders queue 2 jobs" in run.stderr
    if redis_url:
        with redis.Redis.from_url(redis_url) as client:
            assert list(client.scan_iter(match="dreamloop-bench-fair:*")) == []
