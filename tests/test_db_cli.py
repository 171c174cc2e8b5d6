"""`dreamloop migrate` and the embedded PostgreSQL, run as real processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from db.connection import with_schema
from db.migrate import shipped_migrations


def start_dreamloop(*args: str, env: dict[str, str]) -> subprocess.Popen:
    command = Path(sys.executable).parent / "dreamloop"
    return subprocess.Popen([str(command), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


LATEST = len(shipped_migrations())


def test_two_migrate_processes_at_once_create_the_schema_once(cli_env, database_url, db_schema):
    env = cli_env | {"DREAMLOOP_DATABASE_URL": with_schema(database_url, db_schema)}
    results = [finish(p) for p in [start_dreamloop("migrate", env=env) for _ in range(2)]]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    outputs = sorted(out for _, out, _ in results)
    assert outputs[0].startswith("applied 0001_initial.sql\n")
    assert f"created the schema: the database is at migration {LATEST} of {LATEST}" in (
        outputs[0])
    assert outputs[1] == f"nothing is missing: the database is at migration {LATEST} of {LATEST}\n"


def test_embedded_postgres_keeps_its_data_across_a_stop_and_start(cli_env, tmp_path):
    env = cli_env | {"DREAMLOOP_DATA_DIR": str(tmp_path)}
    code, out, err = finish(start_dreamloop("migrate", env=env))
    assert code == 0, err
    assert "created the schema" in out
    # The first process stopped its server on exit; the second starts it again.
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    code, out, err = finish(start_dreamloop("migrate", env=env))
    assert code == 0, err
    assert out == f"nothing is missing: the database is at migration {LATEST} of {LATEST}\n"


def test_an_unreachable_database_is_one_line_and_exit_code_2(cli_env):
    env = cli_env | {"DREAMLOOP_DATABASE_URL": "postgresql://me:hunter2@127.0.0.1:1/x"}
    code, _, err = finish(start_dreamloop("migrate", env=env))
    assert code == 2 and "Traceback" not in err and "hunter2" not in err
    assert "cannot connect to the database at postgresql://me:***@127.0.0.1:1/x" in " ".join(
        err.split())


@pytest.mark.timeout(120)
def test_bench_db_ends_with_a_json_line_of_figures(cli_env, database_url):
    env = cli_env | {"DREAMLOOP_DATABASE_URL": database_url}
    code, out, err = finish(start_dreamloop("bench", "db", "--seconds", "0.3", "--json", env=env))
    assert code == 0, err
    figures = json.loads(out.strip().splitlines()[-1])
    for writers in (1, 16):
        assert figures[f"jobs_per_s_{writers}"] > 0
        assert figures[f"baseline_tx_per_s_{writers}"] > 0
    assert figures["jobs_scaling"] == pytest.approx(
        figures["jobs_per_s_16"] / figures["jobs_per_s_1"], rel=0.02)
    assert figures["rate_images"] == 100_000  # /rate rounds chose among that many images
    assert figures["rate_rounds_per_s_1"] > 0 and figures["rate_vs_baseline_16"] > 0
    assert asyncio.run(bench_schemas_left(database_url)) == 0  # it cleans up after itself


async def bench_schemas_left(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'dreamloop_bench_%'")
    finally:
        await conn.close()
