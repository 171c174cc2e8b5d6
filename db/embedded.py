"""The embedded default: a real PostgreSQL server under the data folder (pgserver).

A hobbyist sets no database URL and gets a server whose data survives
restarts. pgserver shares one server between processes using the same
folder and stops it when the last of them exits: it lists their pids in
the folder's `.handle_pids.json`. A process that was killed (SIGKILL) stays
on that list, and then no exit would ever stop the server; so each start
first drops the pids whose process is gone, and reuses the server they left.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import psutil


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server under data_dir/postgres; returns its connection URL."""
    folder = (data_dir / "postgres").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder at import; with XDG_RUNTIME_DIR
        # unset (servers, containers) that warns and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        import pgserver

        _forget_killed_users(folder)
        server = pgserver.get_server(folder, cleanup_mode="stop")
    return server.get_uri()


def _forget_killed_users(folder: Path) -> None:
    """Take the pids of processes that are gone off pgserver's list, under its lock."""
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    with PostgresServer._lock:
        users = DiskList(folder / ".handle_pids.json")
        for pid in users.get():
            if not _running(pid):
                users.get_and_remove(pid)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
