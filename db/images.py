"""Images of finished jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True)
class StoredImage:
    id: int
    job_id: int
    slot: int
    seed: int
    blob_key: str
    width: int
    height: int
    flagged: bool = False  # by the image classifier (migration 0008)
    safety_labels: dict = field(default_factory=dict)  # label → score of what flagged it


async def get_image(conn: asyncpg.Connection, job_id: int, slot: int) -> StoredImage | None:
    row = await conn.fetchrow(
        """SELECT id, job_id, slot, seed, blob_key, width, height, flagged, safety_labels
           FROM images
           WHERE job_id = $1 AND slot = $2""", job_id, slot)
    return None if row is None else StoredImage(**row)


async def job_images(conn: asyncpg.Connection, job_id: int) -> list[StoredImage]:
    """A finished job's images in slot order."""
    rows = await conn.fetch(
        """SELECT id, job_id, slot, seed, blob_key, width, height, flagged, safety_labels
           FROM images
           WHERE job_id = $1 ORDER BY slot""", job_id)
    return [StoredImage(**row) for row in rows]
