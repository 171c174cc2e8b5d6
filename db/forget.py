"""Forgetting a member (/forget-me, `dreamloop forget`): what they have, and deleting it.

Their jobs go, and with them every job made from their work by others: a variation or
upscale of one of their images (jobs.parent_image_id) and a re-roll of one of their grids
(the re-roll click's feedback event names their job; its interaction id is the new job's).
Those hold their images or their prompt, so they cannot stay. Images, feedback,
comparisons and /rate pairs go by cascade (migration 0001); the moderation log keeps what
happened in a server and loses who it was (actor_id and target_id become NULL), and the
banned-word rules they added as an admin stay, added by 0 (a member since forgotten)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# An image prompt is stored under prompts/{interaction}.png and named by the request's
# parent_image (bot/image_prompt.py); a variation's parent_image is its parent's image.
_IMAGE_PROMPT = """CASE WHEN request->>'parent_image' LIKE 'prompts/%'
                        THEN request->>'parent_image' END"""
# Every job that holds the member's work: theirs, and follow-ups of those, to any depth.
_DOOMED = """WITH RECURSIVE doomed (id) AS (
    SELECT id FROM jobs WHERE member_id = $1
    UNION
    SELECT j.id FROM doomed AS d JOIN jobs AS j
      ON j.parent_image_id IN (SELECT i.id FROM images AS i WHERE i.job_id = d.id)
      OR j.interaction_id IN (SELECT fe.interaction_id FROM feedback_events AS fe
                              WHERE fe.kind = 'reroll' AND fe.job_id = d.id))"""


@dataclass(frozen=True)
class DoomedJob:
    id: int
    member_id: int | None
    model: str
    lane: str
    status: str
    dispatched: bool  # handed to a workers' stream (it may have an entry there)
    image_prompt: str | None  # the blob key of its image prompt, if it had one
    channel_id: int | None
    message_ids: tuple[int, ...]  # the status and result messages posted for it


@dataclass(frozen=True)
class MemberData:
    jobs: list[DoomedJob]
    member_id: int
    images: int
    feedback: int
    comparisons: int
    rate_pairs: int

    @property
    def own_jobs(self) -> int:
        return sum(1 for job in self.jobs if job.member_id == self.member_id)


async def doomed_jobs(conn: asyncpg.Connection, member_id: int) -> list[DoomedJob]:
    rows = await conn.fetch(
        f"""{_DOOMED}
            SELECT j.id, j.member_id, j.model, j.lane, j.status,
                   j.dispatched_at IS NOT NULL AS dispatched,
                   {_IMAGE_PROMPT} AS image_prompt, j.channel_id,
                   array_remove(ARRAY[j.status_message_id, j.result_message_id], NULL)
                       AS message_ids
            FROM jobs AS j WHERE j.id IN (SELECT id FROM doomed) ORDER BY j.id""", member_id)
    return [DoomedJob(**{**dict(row), "message_ids": tuple(row["message_ids"])})
            for row in rows]


async def member_data(conn: asyncpg.Connection, member_id: int) -> MemberData:
    """What forgetting the member deletes, counted (the confirmation and the report)."""
    jobs = await doomed_jobs(conn, member_id)
    ids = [job.id for job in jobs]
    row = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM images WHERE job_id = ANY($2::bigint[])) AS images,
                  (SELECT count(*) FROM feedback_events WHERE member_id = $1) AS feedback,
                  (SELECT count(*) FROM comparisons WHERE member_id = $1) AS comparisons,
                  (SELECT count(*) FROM rate_pairs WHERE member_id = $1) AS rate_pairs""",
        member_id, ids)
    return MemberData(jobs=jobs, member_id=member_id, **row)


async def cancel_doomed(conn: asyncpg.Connection, job_ids: list[int]) -> list[int]:
    """End their unfinished jobs first: a cancelled job is never dispatched, and a result
    that arrives for it is never posted (complete_job wins only an active job)."""
    rows = await conn.fetch(
        """UPDATE jobs SET status = 'cancelled', error = 'its member asked to be forgotten',
                  finished_at = now()
           WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running') RETURNING id""",
        job_ids)
    return [row["id"] for row in rows]


@dataclass(frozen=True)
class Deleted:
    job_ids: list[int]  # every job deleted (theirs and follow-ups of theirs)
    image_prompts: list[str]  # blob keys of those jobs' image prompts
    image_ids: list[int]
    comparison_ids: list[int]  # theirs and any on their images


async def delete_member_data(conn: asyncpg.Connection, member_id: int) -> Deleted:
    """Delete the member, every doomed job (read again here, so a job made since
    member_data goes too) and all that cascades; call it in a transaction."""
    images = await conn.fetch(
        f"""{_DOOMED} SELECT id FROM images WHERE job_id IN (SELECT id FROM doomed)""",
        member_id)
    image_ids = [row["id"] for row in images]
    comparisons = await conn.fetch(
        """SELECT id FROM comparisons WHERE member_id = $1
             OR image_a_id = ANY($2::bigint[]) OR image_b_id = ANY($2::bigint[])""",
        member_id, image_ids)
    jobs = await conn.fetch(
        f"""{_DOOMED} DELETE FROM jobs WHERE id IN (SELECT id FROM doomed)
            RETURNING id, {_IMAGE_PROMPT} AS image_prompt""", member_id)
    await conn.execute("DELETE FROM members WHERE id = $1", member_id)
    await anonymise_moderation_log(conn, member_id)
    # A server's banned-word rules stay (they are the server's, not the admin's); who added
    # them is forgotten: 0 stands for a member since forgotten.
    await conn.execute("UPDATE moderation_rules SET created_by = 0 WHERE created_by = $1",
                       member_id)
    # A ban of the member stays (forgetting must not lift it); a ban made by them stays too,
    # made by 0.
    await conn.execute("UPDATE guild_bans SET banned_by = 0 WHERE banned_by = $1", member_id)
    return Deleted(sorted(row["id"] for row in jobs),
                   [row["image_prompt"] for row in jobs if row["image_prompt"]],
                   image_ids, [row["id"] for row in comparisons])


async def anonymise_moderation_log(conn: asyncpg.Connection, member_id: int) -> int:
    """The log keeps what was done in a server (admins answer for it) without whom: the
    member's id leaves actor_id and target_id, and detail.forgotten says which it was."""
    status = await conn.execute(
        """UPDATE moderation_log
           SET detail = detail || jsonb_build_object('forgotten', CASE
                   WHEN actor_id = $1 AND target_id = $1 THEN 'actor and target'
                   WHEN actor_id = $1 THEN 'actor' ELSE 'target' END),
               actor_id = nullif(actor_id, $1), target_id = nullif(target_id, $1)
           WHERE actor_id = $1 OR target_id = $1""", member_id)
    return int(status.split()[-1])


async def record_forgotten(conn: asyncpg.Connection, member_hash: int | None,
                           deleted: Deleted) -> int:
    """What later exports need to leave them out (never their id); the row's id."""
    return await conn.fetchval(
        """INSERT INTO forgotten_members (member_hash, image_ids, comparison_ids)
           VALUES ($1, $2, $3) RETURNING id""",
        member_hash, deleted.image_ids, deleted.comparison_ids)


async def fair_share_states(conn: asyncpg.Connection) -> list[tuple[str, dict]]:
    rows = await conn.fetch("SELECT stream, state FROM fair_share ORDER BY stream")
    return [(row["stream"], row["state"]) for row in rows]
