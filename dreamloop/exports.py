"""`dreamloop export`: the preference data as files. Reads the rows (db/exports.py) and the
images (the blob store), builds the tables (flywheel/exports.py), and writes each file under
a temporary name first, renamed into place when complete, so a reader never sees half a
file and a failed export leaves the files of the one before. A progress bar counts the
images read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import Progress

from db.exports import comparisons_for_export, forgotten, image_feedback, record_export
from dreamloop.services import blob_store, database_connection
from dreamloop.settings import Settings, SettingsError
from flywheel.exports import (
    KTO_GRID_KINDS,
    KTO_IMAGE_KINDS,
    KTO_SCHEMA,
    PICKAPIC_SCHEMA,
    SPLITS,
    FeedbackRow,
    PairRow,
    battle_rows,
    dataset_card,
    kto_rows,
    kto_table,
    pickapic_rows,
    pickapic_splits,
    pickapic_table,
)
from flywheel.forgotten import Forgotten

FORMATS = ("pickapic", "kto", "battles")
BATCH_ROWS = 64  # rows per parquet row group (and per batch of reads): images make rows big
READ_THREADS = 8  # blob reads in flight: an object store answers each in tens of ms
MIN_SALT_CHARS = 16
MAKE_SALT = 'python -c "import secrets; print(secrets.token_hex(16))"'
NO_SALT = ("dreamloop export needs DREAMLOOP_EXPORT_SALT, a secret that turns member ids into "
           f"anonymous ones (it is never exported): make one with {MAKE_SALT}, set it, and "
           "keep it, since the same salt gives the same anonymous ids in every export")


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int


def export_salt(settings: Settings) -> str:
    """DREAMLOOP_EXPORT_SALT, or a SettingsError saying how to make one."""
    salt = settings.export_salt
    if not salt:
        raise SettingsError(NO_SALT)
    if len(salt) < MIN_SALT_CHARS:
        raise SettingsError(f"DREAMLOOP_EXPORT_SALT has {len(salt)} characters: use at least "
                            f"{MIN_SALT_CHARS} (a short salt can be guessed, and with it the "
                            f"members' ids); make one with {MAKE_SALT}")
    return salt


def export(settings: Settings, fmt: str, out: Path, sources: Sequence[str],
           since: datetime | None, console: Console,
           include_unreliable: bool = False) -> list[Written]:
    """Write one format's files into the folder `out` (made if missing); what was written.
    sources: the comparisons' sources (pickapic, battles); since: only data from then on;
    include_unreliable: keep the votes of members who failed their control pairs."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt is {fmt!r}: allowed: {', '.join(FORMATS)}")
    salt = export_salt(settings)
    # Forgotten members stay out, even of an export of an older backup. (The CLI rewrites the
    # exports written before they were forgotten first: dreamloop/export_cleaning.py.)
    gone = _fetch(settings, forgotten)
    written = _export(settings, fmt, out, sources, since, console, include_unreliable,
                      salt, gone)
    _fetch(settings, record_export, str(out.absolute()), fmt, gone.through)
    return written


def _export(settings: Settings, fmt: str, out: Path, sources: Sequence[str],
            since: datetime | None, console: Console, include_unreliable: bool, salt: str,
            gone: Forgotten) -> list[Written]:
    if fmt == "kto":
        feedback = [row for row in (FeedbackRow(**found) for found in _fetch(
            settings, image_feedback, KTO_IMAGE_KINDS, KTO_GRID_KINDS, since))
            if gone.keeps_feedback(row, salt)]
        out.mkdir(parents=True, exist_ok=True)
        return [_write_kto(settings, out / "kto.parquet", kto_rows(feedback, salt), console)]
    pairs = [pair for pair in map(PairRow.from_row, _fetch(
        settings, comparisons_for_export, sources, since, include_unreliable))
        if gone.keeps_pair(pair, salt)]
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "battles":
        rows = battle_rows(pairs, salt)
        _write_text(out / "battles.json", json.dumps(rows, ensure_ascii=False, indent=1))
        return [Written(out / "battles.json", len(rows))]
    return _write_pickapic(settings, out, pairs, salt, console)


def _fetch(settings: Settings, query: Callable, *args) -> list[dict]:
    async def run() -> list[dict]:
        async with database_connection(settings) as connection:
            return await query(connection, *args)

    return asyncio.run(run())


def _write_pickapic(settings: Settings, out: Path, pairs: list[PairRow], salt: str,
                    console: Console) -> list[Written]:
    """The splits that have pairs and a dataset card naming them, renamed into place together
    once all are complete. An empty split is left out, and its file from an earlier export
    removed: `datasets.load_dataset` (as Diffusion-DPO's train.py calls it) fails on a split
    with no rows ("Instruction 'test' corresponds to no data")."""
    splits = {name: rows for name, split in pickapic_splits(pairs).items()
              if (rows := pickapic_rows(split, salt))}
    if not splits:
        return []  # nothing to train on yet: the files of an earlier export stay
    written = []
    with (_ImageReader(settings, console, 2 * sum(map(len, splits.values()))) as images,
          contextlib.ExitStack() as renames):
        for name, rows in splits.items():
            path = out / f"{name}.parquet"
            _write_parquet(renames.enter_context(_atomic(path)), PICKAPIC_SCHEMA, rows,
                           lambda batch: pickapic_table(batch, images.pairs(batch)))
            written.append(Written(path, len(rows)))
        renames.enter_context(_atomic(out / "README.md")).write_text(dataset_card(list(splits)),
                                                                     encoding="utf-8")
    for name in set(SPLITS) - set(splits):
        (out / f"{name}.parquet").unlink(missing_ok=True)
    return written


def _write_kto(settings: Settings, path: Path, rows: list[dict], console: Console) -> Written:
    with _ImageReader(settings, console, len(rows)) as images, _atomic(path) as temp:
        _write_parquet(temp, KTO_SCHEMA, rows, lambda batch: kto_table(
            batch, images.read([row["image_url"] for row in batch])))
    return Written(path, len(rows))


class _ImageReader:
    """Images read from the blob store a batch at a time on a few threads, counted by a
    progress bar."""

    def __init__(self, settings: Settings, console: Console, total: int) -> None:
        self.store = blob_store(settings)
        self.console = console
        self.total = total

    def __enter__(self) -> _ImageReader:
        with contextlib.ExitStack() as stack:
            self.progress = stack.enter_context(Progress(console=self.console, transient=True))
            self.threads = stack.enter_context(ThreadPoolExecutor(READ_THREADS))
            self.task = self.progress.add_task("images read", total=self.total)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.__exit__(*exc_info)

    def read(self, keys: Sequence[str]) -> list[bytes]:
        """The blobs at keys, in order; a key named twice is read once."""
        unique = list(dict.fromkeys(keys))
        found = dict(zip(unique, self.threads.map(self.store.get, unique), strict=True))
        self.progress.advance(self.task, len(keys))
        return [found[key] for key in keys]

    def pairs(self, rows: Sequence[dict]) -> list[tuple[bytes, bytes]]:
        data = self.read([row[f"image_{n}_url"] for row in rows for n in (0, 1)])
        return list(zip(data[::2], data[1::2], strict=True))


def _write_parquet(path: Path, schema: pa.Schema, rows: Sequence[dict],
                   to_table: Callable[[Sequence[dict]], pa.Table]) -> None:
    """rows in row groups of BATCH_ROWS, each made a table (images and all) only when its
    turn comes, so memory holds one batch of images at a time."""
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(rows), BATCH_ROWS):
            writer.write_table(to_table(rows[start:start + BATCH_ROWS]))


def _write_text(path: Path, text: str) -> None:
    with _atomic(path) as temp:
        temp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed to it when the block succeeds, removed when
    it fails."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def print_summary(written: Sequence[Written]) -> None:
    """One line per file, on stdout."""
    if not written:
        print("nothing written: no pairs to export yet")
    for item in written:
        print(f"wrote {item.path}: {item.rows} row{'' if item.rows == 1 else 's'}")
