"""Forgotten members taken out of the exports written before they asked (/forget-me).

Every folder `dreamloop export` writes is recorded (the exports table); the next
`dreamloop export` or `dreamloop forget` rewrites each recorded export older than the latest
forget, file by file, without the rows flywheel/forgotten.py says go. A folder this machine
does not have is left for the machine that wrote it (its next export cleans it). Each file
is rewritten under a temporary name and renamed into place, so a reader sees the old file
or the clean one. Row indexes and per-prompt counts stay those of the original export.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from db.exports import exports_to_clean, forgotten, mark_cleaned
from dreamloop.exports import _atomic, _fetch, _write_text
from dreamloop.settings import Settings
from flywheel.exports import SPLITS, dataset_card
from flywheel.forgotten import Forgotten


@dataclass(frozen=True)
class Cleaned:
    folder: Path
    rows_dropped: int


def clean_exports(settings: Settings, console: Console) -> list[Cleaned]:
    """Rewrite the recorded exports that may hold members forgotten since; what was done."""
    todo = _fetch(settings, exports_to_clean)
    if not todo:
        return []
    gone = _fetch(settings, forgotten)
    cleaned = []
    with Progress(console=console, transient=True) as progress:
        for export_id, folder, fmt in todo:
            path = Path(folder)
            if not path.is_dir():
                continue  # written on another machine, or deleted
            dropped = _clean_folder(path, fmt, gone, progress)
            _fetch(settings, mark_cleaned, export_id, gone.through)
            cleaned.append(Cleaned(path, dropped))
    return cleaned


def _clean_folder(folder: Path, fmt: str, gone: Forgotten, progress: Progress) -> int:
    if fmt == "battles":
        return _clean_battles(folder / "battles.json", gone)
    if fmt == "kto":
        return _clean_parquet(folder / "kto.parquet", gone, progress)
    dropped, kept = 0, []
    for split in SPLITS:
        path = folder / f"{split}.parquet"
        if path.exists():
            dropped += _clean_parquet(path, gone, progress)
            if pq.ParquetFile(path).metadata.num_rows:
                kept.append(split)
            else:  # datasets.load_dataset fails on a split with no rows
                path.unlink()
    if dropped:
        _write_text(folder / "README.md", dataset_card(kept))
    return dropped


def _clean_parquet(path: Path, gone: Forgotten, progress: Progress) -> int:
    """Rewrite path without the forgotten rows, a row group at a time (images make rows
    big); the number of rows dropped."""
    if not path.exists():
        return 0
    source = pq.ParquetFile(path)
    task = progress.add_task(f"cleaning {path.name}", total=source.num_row_groups)
    dropped = 0
    with _atomic(path) as temp, pq.ParquetWriter(temp, source.schema_arrow) as writer:
        for index in range(source.num_row_groups):
            group = source.read_row_group(index)
            kept = group.filter(gone.table_mask(group))
            dropped += group.num_rows - kept.num_rows
            writer.write_table(kept)
            progress.advance(task)
    return dropped


def _clean_battles(path: Path, gone: Forgotten) -> int:
    if not path.exists():
        return 0
    battles = json.loads(path.read_text(encoding="utf-8"))
    kept = [battle for battle in battles if gone.keeps_battle(battle)]
    _write_text(path, json.dumps(kept, ensure_ascii=False, indent=1))
    return len(battles) - len(kept)
