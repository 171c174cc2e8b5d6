"""/rate's pairs: the images it may show, the pairs shown, and the votes on them."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import asyncpg

from db.feedback import Comparison, FeedbackEvent, record_comparison, record_feedback
from flywheel.rate_pairs import Candidate, PairToShow, choose_pair

RECENT_JOBS = 5_000  # /rate draws from the newest grids (20,000 images): old models are history
PROMPTS_DRAWN = 50  # prompts read per pair chosen
DECOYS_DRAWN = 20  # other members' jobs read per pair chosen, for a control

# The RECENT_JOBS newest rateable jobs ($1); Candidate rows are their images.
_RECENT = "SELECT * FROM rateable_jobs ORDER BY id DESC LIMIT $1"
_CANDIDATES = "SELECT i.id AS image_id, j.prompt, j.version_id, j.member_id"


async def same_prompt_candidates(conn: asyncpg.Connection) -> list[Candidate]:
    """The images of up to PROMPTS_DRAWN random recent prompts, prompts drawn by two or
    more model versions first."""
    rows = await conn.fetch(
        f"""WITH recent AS ({_RECENT}),
                 prompts AS (SELECT prompt FROM recent GROUP BY prompt
                             ORDER BY count(DISTINCT version_id) > 1 DESC, random()
                             LIMIT $2)
            {_CANDIDATES}
            FROM recent AS j JOIN prompts USING (prompt) JOIN images AS i ON i.job_id = j.id""",
        RECENT_JOBS, PROMPTS_DRAWN)
    return [Candidate(**row) for row in rows]


async def decoy_candidates(conn: asyncpg.Connection, member_id: int) -> list[Candidate]:
    """The images of up to DECOYS_DRAWN random recent jobs the member did not make."""
    rows = await conn.fetch(
        f"""{_CANDIDATES}
            FROM (SELECT * FROM ({_RECENT}) AS recent WHERE member_id IS DISTINCT FROM $3
                  ORDER BY random() LIMIT $2) AS j
            JOIN images AS i ON i.job_id = j.id""", RECENT_JOBS, DECOYS_DRAWN, member_id)
    return [Candidate(**row) for row in rows]


async def answered_pairs(conn: asyncpg.Connection, member_id: int,
                         image_ids: Sequence[int]) -> set[tuple[int, int]]:
    """The pairs among these images the member has voted on (real pairs or controls), as
    (lower id, higher id). Every vote is an answered rate_pairs row."""
    rows = await conn.fetch(
        """SELECT least(left_image_id, right_image_id) AS low,
                  greatest(left_image_id, right_image_id) AS high
           FROM rate_pairs
           WHERE member_id = $1 AND label IS NOT NULL
             AND (left_image_id = ANY($2::bigint[]) OR right_image_id = ANY($2::bigint[]))""",
        member_id, list(image_ids))
    return {(row["low"], row["high"]) for row in rows}


@dataclass(frozen=True)
class ShownPair:
    """A pair shown to a member, and the two images' files."""

    id: int
    member_id: int
    prompt: str
    left_blob_key: str
    right_blob_key: str


async def show_pair(conn: asyncpg.Connection, member_id: int, pair: PairToShow) -> ShownPair:
    """Record that the member is shown this pair now."""
    row = await conn.fetchrow(
        """WITH member AS (INSERT INTO members (id) VALUES ($1) ON CONFLICT DO NOTHING),
                shown AS (INSERT INTO rate_pairs (member_id, left_image_id, right_image_id,
                                                  prompt, decoy_image_id)
                          VALUES ($1, $2, $3, $4, $5) RETURNING id)
           SELECT shown.id, l.blob_key AS left_blob_key, r.blob_key AS right_blob_key
           FROM shown, images AS l, images AS r WHERE l.id = $2 AND r.id = $3""",
        member_id, pair.left.image_id, pair.right.image_id, pair.prompt,
        pair.decoy.image_id if pair.decoy else None)
    return ShownPair(row["id"], member_id, pair.prompt, row["left_blob_key"],
                     row["right_blob_key"])


async def next_pair(conn: asyncpg.Connection, member_id: int,
                    rng: random.Random) -> ShownPair | None:
    """Choose the member's next pair (flywheel/rate_pairs.py) and record it as shown; None
    when they have rated every pair the candidates drawn make."""
    same_prompt = await same_prompt_candidates(conn)
    decoys = await decoy_candidates(conn, member_id)
    voted = await answered_pairs(conn, member_id, [c.image_id for c in (*same_prompt, *decoys)])
    pair = choose_pair(same_prompt, decoys, member_id, voted, rng)
    return None if pair is None else await show_pair(conn, member_id, pair)


class Vote(Enum):
    COUNTED = "counted"
    ALREADY_ANSWERED = "already answered"  # a second click, or the same pair in two windows
    NOT_THEIRS = "not theirs"  # shown to another member
    GONE = "gone"  # deleted since (an image, or the member's data)


async def record_vote(conn: asyncpg.Connection, pair_id: int, member_id: int, label: str,
                      interaction_id: int | None = None) -> Vote:
    """The member's answer on a pair shown to them: the pair's label, a `vote` feedback
    event and, for a real pair (not a control), an explicit comparison; all or nothing."""
    try:
        async with conn.transaction():
            answered = await _answer(conn, pair_id, member_id, label)
            if answered is None:
                return await _why_not(conn, pair_id, member_id)
            await _record_answer(conn, answered, interaction_id)
    except asyncpg.UniqueViolationError:  # this control pair, answered in another window
        return Vote.ALREADY_ANSWERED
    return Vote.COUNTED


async def _answer(conn: asyncpg.Connection, pair_id: int, member_id: int,
                  label: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """UPDATE rate_pairs SET label = $3, voted_at = greatest(now(), shown_at)
           WHERE id = $1 AND member_id = $2 AND label IS NULL
           RETURNING *, round(extract(epoch FROM voted_at - shown_at) * 1000)::int
                        AS decision_ms""", pair_id, member_id, label)


async def _why_not(conn: asyncpg.Connection, pair_id: int, member_id: int) -> Vote:
    owner = await conn.fetchval("SELECT member_id FROM rate_pairs WHERE id = $1", pair_id)
    if owner is None:
        return Vote.GONE
    return Vote.ALREADY_ANSWERED if owner == member_id else Vote.NOT_THEIRS


async def _record_answer(conn: asyncpg.Connection, pair: asyncpg.Record,
                         interaction_id: int | None) -> None:
    chosen = {"a": (pair["left_image_id"], 1), "b": (pair["right_image_id"], 2)}
    image_id, slot = chosen.get(pair["label"], (None, None))
    event_id, _ = await record_feedback(conn, FeedbackEvent(
        member_id=pair["member_id"], kind="vote", shown_at=pair["shown_at"],
        decided_at=pair["voted_at"], image_id=image_id, shown_slot=slot,
        interaction_id=interaction_id))
    if pair["decoy_image_id"] is not None:
        return  # a control: it measures the member, it says nothing about the images
    await record_comparison(conn, Comparison(
        image_a_id=pair["left_image_id"], image_b_id=pair["right_image_id"],
        prompt=pair["prompt"], label=pair["label"], source="explicit",
        member_id=pair["member_id"], shown_slot_a=1, shown_slot_b=2,
        decision_ms=pair["decision_ms"], feedback_event_id=event_id))


@dataclass(frozen=True)
class Reliability:
    controls: int  # control pairs answered
    passed: int
    unreliable: bool


async def member_reliability(conn: asyncpg.Connection, member_id: int) -> Reliability:
    row = await conn.fetchrow(
        "SELECT controls, passed, unreliable FROM member_reliability WHERE member_id = $1",
        member_id)
    return Reliability(**row) if row else Reliability(0, 0, False)

