"""The embedded default: a real PostgreSQL server under the data folder (pgserver).

A hobbyist sets no database URL and gets a server whose data survives
restarts. pgserver shares one server between processes using the same
folder and stops it when the last of them exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the server under data_dir/postgres; returns its connection URL."""
    folder = data_dir / "postgres"
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime folder at import; with XDG_RUNTIME_DIR
        # unset (servers, containers) that warns and falls back to /tmp, which is fine.
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(folder, cleanup_mode="stop")
    return server.get_uri()
