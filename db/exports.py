"""Rows for `dreamloop export`, as plain dicts: comparisons with both of their images, and
per-image feedback. Which kinds mean what is the flywheel's business (flywheel/exports.py);
these queries only take the kinds and sources they are asked for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from flywheel.forgotten import Forgotten

SOURCES = ("explicit", "implicit_upscale", "implicit_variation")
# V picks (implicit_variation) are a weaker signal: exported only when asked for.
DEFAULT_SOURCES = ("explicit", "implicit_upscale")


async def comparisons_for_export(conn: asyncpg.Connection, sources: Sequence[str],
                                 since: datetime | None = None,
                                 include_unreliable: bool = False) -> list[dict]:
    """Comparisons of the given sources made at or after `since`, oldest first, without the
    votes of members found unreliable by their control pairs unless include_unreliable. Each
    row has the comparison's id, prompt, label, source, member_id, shown_slot_a/b,
    decision_ms, created_at and reliability (the member's control accuracy, None before
    their first control), and for each image (a_ and b_ prefixes) its id, blob_key, seed,
    sha256, model (the model version's name), and the steps and guidance its job was drawn
    with."""
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        raise ValueError(f"sources is {list(sources)!r}: name one or more of "
                         f"{', '.join(SOURCES)}")
    # counted_comparisons: all but unreliable members' votes (db/migrations/0004_rate.sql)
    table = "comparisons" if include_unreliable else "counted_comparisons"
    rows = await conn.fetch(
        f"""SELECT c.id, c.prompt, c.label, c.source, c.member_id, c.shown_slot_a,
                  c.shown_slot_b, c.decision_ms, c.created_at, r.reliability,
                  ia.id AS a_id, ia.blob_key AS a_blob_key, ia.seed AS a_seed,
                  ia.sha256 AS a_sha256, va.name AS a_model,
                  (ja.request->>'steps')::bigint AS a_steps,
                  (ja.request->>'guidance')::float8 AS a_guidance,
                  ib.id AS b_id, ib.blob_key AS b_blob_key, ib.seed AS b_seed,
                  ib.sha256 AS b_sha256, vb.name AS b_model,
                  (jb.request->>'steps')::bigint AS b_steps,
                  (jb.request->>'guidance')::float8 AS b_guidance
           FROM {table} AS c
           JOIN images AS ia ON ia.id = c.image_a_id
           JOIN jobs AS ja ON ja.id = ia.job_id
           JOIN model_versions AS va ON va.id = ia.model_version_id
           JOIN images AS ib ON ib.id = c.image_b_id
           JOIN jobs AS jb ON jb.id = ib.job_id
           JOIN model_versions AS vb ON vb.id = ib.model_version_id
           LEFT JOIN member_reliability AS r ON r.member_id = c.member_id
           WHERE c.source = ANY($1::text[])
             AND ($2::timestamptz IS NULL OR c.created_at >= $2)
           ORDER BY c.id""", list(sources), since)
    return [dict(row) for row in rows]


async def image_feedback(conn: asyncpg.Connection, image_kinds: Sequence[str],
                         grid_kinds: Sequence[str], since: datetime | None = None
                         ) -> list[dict]:
    """Feedback on single images decided at or after `since`, oldest first: one row per
    event of an image kind (about its image) and one per image of the job for an event of
    a grid kind (a re-roll is about the whole grid). Each row has event_id, kind,
    member_id, decided_at, image_id, blob_key and prompt (the image's job's prompt)."""
    rows = await conn.fetch(
        """SELECT fe.id AS event_id, fe.kind, fe.member_id, fe.decided_at, i.id AS image_id,
                  i.blob_key, j.request->>'prompt' AS prompt
           FROM feedback_events AS fe
           JOIN images AS i ON i.id = fe.image_id
           JOIN jobs AS j ON j.id = i.job_id
           WHERE fe.kind = ANY($1::text[])
             AND ($3::timestamptz IS NULL OR fe.decided_at >= $3)
           UNION ALL
           SELECT fe.id, fe.kind, fe.member_id, fe.decided_at, i.id, i.blob_key,
                  j.request->>'prompt'
           FROM feedback_events AS fe
           JOIN jobs AS j ON j.id = fe.job_id
           JOIN images AS i ON i.job_id = j.id
           WHERE fe.kind = ANY($2::text[])
             AND ($3::timestamptz IS NULL OR fe.decided_at >= $3)
           ORDER BY event_id, image_id""", list(image_kinds), list(grid_kinds), since)
    return [dict(row) for row in rows]


# -- keeping forgotten members out (migration 0010) ------------------------------------------

async def record_export(conn: asyncpg.Connection, folder: str, fmt: str,
                        cleaned_through: int) -> None:
    """Remember a folder an export wrote, clean of the members forgotten through
    forgotten_members row cleaned_through."""
    await conn.execute(
        """INSERT INTO exports (folder, format, cleaned_through) VALUES ($1, $2, $3)
           ON CONFLICT (folder, format) DO UPDATE
           SET written_at = now(), cleaned_through = excluded.cleaned_through""",
        folder, fmt, cleaned_through)


async def forgotten(conn: asyncpg.Connection) -> Forgotten:
    """Every member forgotten so far, as exports must leave them out."""
    row = await conn.fetchrow(
        """SELECT coalesce(max(id), 0) AS through,
                  array_remove(array_agg(member_hash), NULL) AS hashes,
                  (SELECT coalesce(array_agg(i), '{}') FROM forgotten_members,
                          unnest(image_ids) AS i) AS images,
                  (SELECT coalesce(array_agg(c), '{}') FROM forgotten_members,
                          unnest(comparison_ids) AS c) AS comparisons
           FROM forgotten_members""")
    return Forgotten(row["through"], frozenset(row["hashes"] or ()),
                     frozenset(row["images"]), frozenset(row["comparisons"]))


async def exports_to_clean(conn: asyncpg.Connection) -> list[tuple[int, str, str]]:
    """(id, folder, format) of the recorded exports written before someone was forgotten."""
    rows = await conn.fetch(
        """SELECT id, folder, format FROM exports
           WHERE cleaned_through < (SELECT coalesce(max(id), 0) FROM forgotten_members)
           ORDER BY id""")
    return [(row["id"], row["folder"], row["format"]) for row in rows]


async def mark_cleaned(conn: asyncpg.Connection, export_id: int, through: int) -> None:
    await conn.execute("UPDATE exports SET cleaned_through = greatest(cleaned_through, $2) "
                       "WHERE id = $1", export_id, through)
