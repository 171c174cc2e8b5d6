"""Feedback events (every click and vote, append-only) and comparisons (pairs with a winner)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

FEEDBACK_KINDS = ("upscale_pick", "variation_pick", "reroll", "thumbs_up", "thumbs_down",
                  "favourite", "vote", "vary_subtle", "vary_strong", "upscale_2x",
                  "vary_region", "zoom_out", "pan")


@dataclass(frozen=True)
class FeedbackEvent:
    member_id: int
    kind: str
    shown_at: datetime  # when the member first saw what they decided on
    job_id: int | None = None
    image_id: int | None = None
    shown_slot: int | None = None  # grid slot 1-4, or 1/2 for left/right in /rate
    interaction_id: int | None = None  # the click; a retried click is recorded once
    decided_at: datetime | None = None  # None: now, as the database sees it


async def record_feedback(conn: asyncpg.Connection, event: FeedbackEvent) -> tuple[int, bool]:
    """Append an event; returns (event id, created). A repeat of an interaction adds nothing."""
    event_id = await conn.fetchval(
        """WITH member AS (INSERT INTO members (id) VALUES ($2) ON CONFLICT DO NOTHING)
           INSERT INTO feedback_events (interaction_id, member_id, kind, job_id, image_id,
                                        shown_slot, shown_at, decided_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))
           ON CONFLICT (interaction_id) DO NOTHING
           RETURNING id""",
        event.interaction_id, event.member_id, event.kind, event.job_id, event.image_id,
        event.shown_slot, event.shown_at, event.decided_at)
    if event_id is not None:
        return event_id, True
    return await conn.fetchval("SELECT id FROM feedback_events WHERE interaction_id = $1",
                               event.interaction_id), False


@dataclass(frozen=True)
class Comparison:
    image_a_id: int
    image_b_id: int
    prompt: str
    label: str  # a, b, tie, both_bad
    source: str  # explicit (a vote), implicit_upscale, implicit_variation (implied by a pick)
    member_id: int
    shown_slot_a: int
    shown_slot_b: int
    decision_ms: int | None = None
    feedback_event_id: int | None = None


async def record_comparison(conn: asyncpg.Connection, pair: Comparison) -> int | None:
    """Store a pair; None when the member already voted on it (one vote per member and pair)."""
    return await conn.fetchval(
        """INSERT INTO comparisons (image_a_id, image_b_id, prompt, label, source, member_id,
                                    shown_slot_a, shown_slot_b, decision_ms, feedback_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (member_id, least(image_a_id, image_b_id),
                        greatest(image_a_id, image_b_id)) WHERE source = 'explicit'
           DO NOTHING
           RETURNING id""",
        pair.image_a_id, pair.image_b_id, pair.prompt, pair.label, pair.source, pair.member_id,
        pair.shown_slot_a, pair.shown_slot_b, pair.decision_ms, pair.feedback_event_id)


async def version_battles(conn: asyncpg.Connection,
                          sources: list[str]) -> list[tuple[str, str, str]]:
    """(version of image a, version of image b, label) for the counted comparisons of images
    made by two different model versions: what the leaderboard rates."""
    rows = await conn.fetch(
        """SELECT va.name AS a, vb.name AS b, c.label
           FROM counted_comparisons AS c
           JOIN images AS ia ON ia.id = c.image_a_id
           JOIN images AS ib ON ib.id = c.image_b_id
           JOIN model_versions AS va ON va.id = ia.model_version_id
           JOIN model_versions AS vb ON vb.id = ib.model_version_id
           WHERE c.source = ANY($1) AND ia.model_version_id <> ib.model_version_id
           ORDER BY c.id""", sources)
    return [(row["a"], row["b"], row["label"]) for row in rows]


async def picked_slots(conn: asyncpg.Connection) -> list[int]:
    """The grid slot of every U pick (for position bias: each slot should win a quarter)."""
    rows = await conn.fetch(
        "SELECT shown_slot FROM feedback_events WHERE kind = 'upscale_pick'")
    return [row["shown_slot"] for row in rows]


async def explicit_votes(conn: asyncpg.Connection) -> tuple[list[tuple], list[int]]:
    """The counted explicit votes: (pair, member, outcome, when) of each, the outcome as
    seen from the lower image id whichever side each image was shown on (for agreement);
    and the side (1 left, 2 right) of each A or B vote's winner (for position bias: /rate
    shuffles the sides, so each should win half)."""
    rows = await conn.fetch(
        """SELECT least(image_a_id, image_b_id) AS low, greatest(image_a_id, image_b_id) AS high,
                  member_id, created_at,
                  CASE WHEN label IN ('a', 'b') AND image_a_id > image_b_id
                       THEN translate(label, 'ab', 'ba') ELSE label END AS outcome,
                  CASE label WHEN 'a' THEN shown_slot_a WHEN 'b' THEN shown_slot_b END AS side
           FROM counted_comparisons
           WHERE source = 'explicit'""")
    votes = [((row["low"], row["high"]), row["member_id"], row["outcome"], row["created_at"])
             for row in rows]
    return votes, [row["side"] for row in rows if row["side"] is not None]


@dataclass(frozen=True)
class LeaderboardRows:
    """What a leaderboard is built from (flywheel/leaderboard.py)."""

    battles: list[tuple[str, str, str]]  # between versions, from the sources asked for
    picked_slots: list[int]  # the grid slot of every U pick
    votes: list[tuple]  # every explicit vote, for agreement
    voted_sides: list[int]  # the side of every A or B vote's winner


async def leaderboard_rows(conn: asyncpg.Connection, sources: list[str]) -> LeaderboardRows:
    votes, sides = await explicit_votes(conn)
    return LeaderboardRows(await version_battles(conn, sources), await picked_slots(conn),
                           votes, sides)
