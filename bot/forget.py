"""Forgetting a member: the one piece of code /forget-me and `dreamloop forget` both run.

In this order, so that nothing of theirs runs, is posted or comes back:
1. With the dispatcher's and the reconciler's locks held (no job of theirs can reach a
   stream meanwhile), their unfinished jobs are cancelled in PostgreSQL: never dispatched,
   never completed.
2. Their unread stream entries are deleted; a worker drawing one gets its cancel flag.
3. Their rows go, in one transaction (db/forget.py), with their fair-share turns, and a
   forgotten_members row (their salted hash, never their id) keeps them out of exports.
4. Then Redis's results, dead letters, markers and flags of those jobs, and their blobs.
A worker that finishes one of their jobs after this finds no job in PostgreSQL at
delivery, which deletes what it left (bot/delivery.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from bot.dispatcher import dispatch_lock
from bot.fair_share import FairShare
from bot.reconciler import reconciler_lock
from db.forget import (
    Deleted,
    MemberData,
    cancel_doomed,
    delete_member_data,
    fair_share_states,
    member_data,
    record_forgotten,
)
from db.jobs import save_fair_share_state
from flywheel.exports import member_hash
from generation.blobs import BlobStore, job_prefix
from generation.forget import forget_in_redis, unqueue


@dataclass(frozen=True)
class ForgetReport:
    """What was deleted, counted: nothing in it names the member or their work."""

    jobs: int  # theirs
    follow_ups: int  # other members' variations, upscales and re-rolls of their work
    images: int
    feedback: int
    comparisons: int
    rate_pairs: int
    stopped: int  # queued or running when they asked
    blobs: int
    redis_entries: int
    messages: tuple[tuple[int, int], ...]  # (channel, message) posted for those jobs

    def summary(self) -> str:
        parts = [f"{self.jobs} job(s)", f"{self.images} image(s) and {self.blobs} stored "
                 "file(s)", f"{self.feedback} click(s) and vote(s)",
                 f"{self.comparisons} comparison(s)", f"{self.rate_pairs} /rate pair(s)"]
        if self.follow_ups:
            parts.append(f"{self.follow_ups} other member(s)' variation(s) or re-roll(s) "
                         "of your images")
        stopped = f" {self.stopped} unfinished job(s) were stopped." if self.stopped else ""
        return f"Deleted: {', '.join(parts)}.{stopped}"


async def forget_member(services, member_id: int, salt: str | None) -> ForgetReport:
    """Delete everything dreamloop holds of the member (see the module's docstring).
    salt: DREAMLOOP_EXPORT_SALT, so exports can leave them out; None if it is not set."""
    # The reconciler's lock too: a pass that read their job as lost must not queue it again.
    async with services.db.acquire() as conn, dispatch_lock(conn), reconciler_lock(conn):
        data = await member_data(conn, member_id)
        stopped = await cancel_doomed(conn, [job.id for job in data.jobs])
        unqueued, held = await unqueue(services.queue,
                                       [str(job.id) for job in data.jobs if job.dispatched])
        async with conn.transaction():
            deleted = await delete_member_data(conn, member_id)
            await record_forgotten(conn, member_hash(member_id, salt) if salt else None,
                                   deleted)
            await _drop_from_fair_share(conn, member_id)
    redis_entries = unqueued + await forget_in_redis(
        services.queue, {str(job_id) for job_id in deleted.job_ids}, held, member_id)
    blobs = await asyncio.to_thread(_delete_blobs, services.blobs, deleted)
    return _report(data, len(stopped), blobs, redis_entries)


async def _drop_from_fair_share(conn: asyncpg.Connection, member_id: int) -> None:
    for stream, state in await fair_share_states(conn):
        share = FairShare.from_json(state)
        if share.forget_member(member_id):
            await save_fair_share_state(conn, stream, share.to_json())


def _delete_blobs(blobs: BlobStore, deleted: Deleted) -> int:
    """Their images, grids and upscales (images/{job}/…) and image prompts
    (prompts/{interaction}.png): every key a job's blobs are stored under."""
    count = sum(blobs.delete_prefix(job_prefix(job_id)) for job_id in deleted.job_ids)
    return count + sum(blobs.delete_prefix(key) for key in deleted.image_prompts)


def _report(data: MemberData, stopped: int, blobs: int, redis_entries: int) -> ForgetReport:
    messages = tuple((job.channel_id, message) for job in data.jobs if job.channel_id
                     for message in job.message_ids)
    return ForgetReport(
        jobs=data.own_jobs, follow_ups=len(data.jobs) - data.own_jobs, images=data.images,
        feedback=data.feedback, comparisons=data.comparisons, rate_pairs=data.rate_pairs,
        stopped=stopped, blobs=blobs, redis_entries=redis_entries, messages=messages)
