"""A forgotten member's jobs taken out of Redis: stream entries, results, markers, flags.

A job's entry that no worker has read yet is deleted outright, so it never runs. One a
worker holds (pending in the workers' group) is left to that worker with its cancel flag
set: it stops between two steps and reports the job cancelled, and delivery, finding no
such job in PostgreSQL any more, deletes what it left (forget_leftovers). Deleting a held
entry instead would make the worker lose its lease after writing the images, and nobody
would delete them.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as redis

from generation.keys import DELIVERY_GROUP, WORKER_GROUP
from generation.queue import JobQueue

# KEYS: entries; ARGV: job, workers' group. 0: no entry; 1: a worker holds it; 2: deleted.
_UNQUEUE = """
local where = redis.call('HGET', KEYS[1], ARGV[1])
if not where then return 0 end
local stream, id = string.match(where, '^(.*)|([^|]*)$')
local ok, pending = pcall(redis.call, 'XPENDING', stream, ARGV[2], id, id, 1)
if ok and #pending > 0 then return 1 end
redis.call('XDEL', stream, id)
redis.call('HDEL', KEYS[1], ARGV[1])
return 2
"""
PAGE = 1000  # stream entries read per XRANGE


async def unqueue(queue: JobQueue, job_ids: Iterable[str]) -> tuple[int, set[str]]:
    """Delete the jobs' unread stream entries; (entries deleted, ids a worker holds now,
    whose cancel flags are set here)."""
    script = queue.redis.register_script(_UNQUEUE)
    deleted, held = 0, set()
    for job_id in job_ids:
        outcome = await script(keys=[queue.keys.entries], args=[job_id, WORKER_GROUP])
        deleted += outcome == 2
        if outcome == 1:
            held.add(job_id)
    if held:
        await queue.cancel(*held)
    return deleted, held


async def forget_in_redis(queue: JobQueue, job_ids: set[str], held: set[str],
                          member_id: int) -> int:
    """Everything else Redis has of the jobs and the member; the number of keys and
    entries deleted. held: the jobs a worker still has (their flags and markers stay until
    delivery forgets them)."""
    count = 0
    for stream in (queue.keys.results, queue.keys.dead):
        count += await drop_entries(queue, stream, job_ids)
    gone = sorted(job_ids - held)
    keys = [key for job_id in gone for key in (
        queue.keys.done(job_id), queue.keys.cancel(job_id), queue.keys.last_error(job_id))]
    keys.append(queue.keys.shows(member_id))
    keys += [key async for key in queue.redis.scan_iter(
        match=queue.keys.click(member_id, "*"), count=PAGE)]
    if keys:
        count += await queue.redis.delete(*keys)
    return count


async def drop_entries(queue: JobQueue, stream: str, job_ids: set[str]) -> int:
    """Delete (and acknowledge, for delivery) the stream's entries of these jobs."""
    doomed, start = [], "-"
    while True:
        page = await queue.redis.xrange(stream, start, "+", count=PAGE)
        doomed += [entry_id for entry_id, fields in page if fields.get("job") in job_ids]
        if len(page) < PAGE:
            break
        start = "(" + page[-1][0]
    if not doomed:
        return 0
    if stream == queue.keys.results:
        try:
            await queue.redis.xack(stream, DELIVERY_GROUP, *doomed)
        except redis.ResponseError as error:  # no group yet: nothing is pending
            if "NOGROUP" not in str(error):
                raise
    return await queue.redis.xdel(stream, *doomed)


async def forget_leftovers(queue: JobQueue, job_id: str, result_entry: str) -> None:
    """A result came for a job PostgreSQL no longer has (its member was forgotten while a
    worker drew it): its entry, done marker, cancel flag and last error go."""
    await queue.redis.xack(queue.keys.results, DELIVERY_GROUP, result_entry)
    await queue.redis.xdel(queue.keys.results, result_entry)
    await queue.redis.delete(queue.keys.done(job_id), queue.keys.cancel(job_id),
                             queue.keys.last_error(job_id))
