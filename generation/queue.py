"""The job queue on Redis Streams: at-least-once delivery, completion exactly once.

A stream per model and lane; workers read it as one consumer group. An entry
stays in the group's pending list until its worker completes it; a worker
that dies or freezes stops renewing its lease, and after `lease_ms` another
worker reclaims the entry with XAUTOCLAIM. Renewing, completing, releasing
and dead-lettering are Lua scripts that act only on entries the caller still
owns, so a worker that lost its lease can finish the GPU work but always
loses the race to report it (REFERENCE.md §3). Streams are never trimmed
with MAXLEN (that drops pending work): entries are deleted once acknowledged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import redis.asyncio as redis

from generation.contract import GenerationRequest, InvalidRequest
from generation.keys import LANES, WORKER_GROUP, Keys
from generation.queue_scripts import DISCARD, ENQUEUE, FINISH, RELEASE, RENEW

log = logging.getLogger(__name__)

CANCEL_TTL_S = 86_400  # a cancel flag outlives any job that could still be running
# A done marker outlives any wait for delivery (PostgreSQL down for days is an outage anyway).
DONE_TTL_S = 7 * 86_400

@dataclass(frozen=True)
class QueuedJob:
    """One delivery of a job to a worker."""

    job_id: str
    request: GenerationRequest
    lane: str
    stream: str
    entry_id: str
    deliveries: int  # times this entry has been handed out, this one included

    @property
    def enqueued_ms(self) -> int:
        """When it was enqueued (stream ids start with the milliseconds of their XADD)."""
        return int(self.entry_id.split("-")[0])

    @property
    def request_text(self) -> str:
        return self.request.to_json()


@dataclass(frozen=True)
class InvalidEntry:
    """A stream entry that is not a valid job (the stream is an input too): never run."""

    job_id: str
    stream: str
    entry_id: str
    request_text: str
    reason: str
    deliveries: int = 1


class JobQueue:
    def __init__(self, client: redis.Redis, keys: Keys, *, lease_ms: int = 30_000,
                 max_deliveries: int = 3):
        if lease_ms < 100:
            raise ValueError(f"lease_ms is {lease_ms}: at least 100")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries is {max_deliveries}: at least 1")
        self.redis, self.keys = client, keys
        self.lease_ms, self.max_deliveries = lease_ms, max_deliveries
        self._cursors: dict[str, str] = {}  # XAUTOCLAIM resumes where the last scan ended
        self._groups: set[str] = set()  # streams whose worker group we know exists
        self._enqueue = client.register_script(ENQUEUE)
        self._renew = client.register_script(RENEW)
        self._finish = client.register_script(FINISH)
        self._release = client.register_script(RELEASE)
        self._discard = client.register_script(DISCARD)

    # -- the producer side (the bot) -----------------------------------------------------

    async def enqueue(self, job_id: str, request: GenerationRequest, lane: str = "fast") -> str:
        """Add a job to its model's stream for lane, unless it is there already or done;
        returns its entry id ('' for a job that is done)."""
        return (await self._enqueue_once(job_id, request, lane))[0]

    async def enqueue_if_lost(self, job_id: str, request: GenerationRequest,
                              lane: str = "fast") -> bool:
        """Queue a job again if Redis has neither its entry nor its result; True if it did.
        Checked and added in one script, so a job finishing meanwhile is not run twice."""
        return (await self._enqueue_once(job_id, request, lane))[1]

    async def _enqueue_once(self, job_id: str, request: GenerationRequest,
                            lane: str) -> tuple[str, bool]:
        if lane not in LANES:
            raise ValueError(f"lane is {lane!r}: allowed: {', '.join(LANES)}")
        stream = self.keys.jobs(request.model, lane)
        await self.ensure_group(stream)
        entry_id, added = await self._enqueue(
            keys=[stream, self.keys.entries, self.keys.done(job_id)],
            args=[job_id, request.to_json()])
        return entry_id, bool(added)

    async def is_done(self, job_id: str, request: GenerationRequest) -> bool:
        """Whether a worker reported this job (its result may still wait for delivery)."""
        marker = await self.redis.get(self.keys.done(job_id))
        return marker == hashlib.sha1(request.to_json().encode()).hexdigest()

    async def cancel(self, *job_ids: str) -> None:
        """Ask whichever workers have the jobs to stop them between two steps (or not start
        them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.set(self.keys.cancel(job_id), 1, ex=CANCEL_TTL_S)
            await pipe.execute()

    async def cancelled(self, job_ids: Iterable[str]) -> set[str]:
        ids = list(job_ids)
        if not ids:
            return set()
        flags = await self.redis.mget([self.keys.cancel(i) for i in ids])
        return {job_id for job_id, flag in zip(ids, flags, strict=True) if flag is not None}

    async def ensure_group(self, stream: str) -> None:
        """Create the worker group (and the stream) unless it exists; after a Redis restart
        without persistence both are gone (NOGROUP) and this brings them back. Asked once
        per stream, not per command: a lost group shows up as NOGROUP and is made again."""
        if stream in self._groups:
            return
        try:
            await self.redis.xgroup_create(stream, WORKER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._groups.add(stream)

    # -- the worker side -------------------------------------------------------------------

    async def announce(self, consumer: str, models: list[str],
                       lanes: tuple[str, ...] = LANES) -> None:
        """Say that this worker serves models (in these lanes) now (a sampling pool does so
        every third of a lease); A/B routing sends traffic only to models someone serves,
        and the dispatcher keeps a few jobs ahead of each worker serving a lane."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in [self.keys.serving(m) for m in models] + [
                    self.keys.serving_lane(m, lane) for m in models for lane in lanes]:
                pipe.zadd(key, {consumer: now_ms})
                pipe.zremrangebyscore(key, 0, now_ms - 10 * self.lease_ms)
            await pipe.execute()

    async def is_served(self, model: str) -> bool:
        """True if a worker announced model within the last three leases."""
        return await self.serving_count(model) > 0

    async def serving_count(self, model: str, lane: str | None = None) -> int:
        """How many workers announced model (in lane) within the last three leases."""
        since_ms = int(time.time() * 1000) - 3 * self.lease_ms
        key = self.keys.serving(model) if lane is None else self.keys.serving_lane(model, lane)
        return await self.redis.zcount(key, since_ms, "+inf")

    async def undelivered(self, model: str, lane: str) -> int:
        """Entries of a stream that no worker has taken yet: the stream's length less the
        entries handed out and not finished (finished ones are deleted)."""
        stream = self.keys.jobs(model, lane)
        await self.ensure_group(stream)
        length, pending = await self._with_group([stream], self._length_and_pending(stream),
                                                 empty=[0, 0])
        return max(0, length - pending)

    async def _length_and_pending(self, stream: str) -> list[int]:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xlen(stream)
            pipe.xpending(stream, WORKER_GROUP)
            length, pending = await pipe.execute()
        return [length, pending["pending"]]

    async def take(self, consumer: str, streams: list[tuple[str, str]], count: int,
                   block_ms: int = 0, holding: Collection[str] = ()) -> list[QueuedJob]:
        """Up to count jobs from (stream, lane) pairs in priority order: entries whose lease
        lapsed first, then new ones; if none, wait up to block_ms for a new one.

        holding: the entry ids this consumer still has in hand (running, or reporting).
        Their lease may lapse while Redis hangs, and the consumer's own claim takes them
        back (same consumer name): that claim is a renewal, not a job to run again."""
        taken: list[QueuedJob] = []
        for stream, lane in streams:
            reclaimed = await self._reclaim(consumer, stream, lane, count - len(taken))
            taken += [job for job in reclaimed if job.entry_id not in holding]
        for stream, lane in streams:
            if len(taken) < count:
                taken += await self._read_new(consumer, {stream: lane}, count - len(taken), None)
        if not taken and block_ms > 0:
            taken = await self._read_new(consumer, dict(streams), count, block_ms)
        return await self._drop_unusable(consumer, taken)

    async def _reclaim(self, consumer: str, stream: str, lane: str, count: int) -> list[QueuedJob]:
        if count <= 0:
            return []
        # Redis scans at most 10×count pending entries a call: resume from its cursor, so
        # lapsed entries behind many live ones are still found.
        reply = await self._with_group([stream], self.redis.xautoclaim(
            stream, WORKER_GROUP, consumer, self.lease_ms,
            start_id=self._cursors.get(stream, "0-0"), count=count), empty=["0-0", []])
        self._cursors[stream] = reply[0] or "0-0"
        entries = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
        gone = [entry_id for entry_id, fields in reply[1] if not fields]
        if gone:  # claimed ids whose data was deleted (Redis 6): drop them from the group
            await self.redis.xack(stream, WORKER_GROUP, *gone)
        counts = await self._delivery_counts(stream, [entry_id for entry_id, _ in entries])
        return [_parse(stream, lane, entry_id, fields, counts[entry_id])
                for entry_id, fields in entries]

    async def _read_new(self, consumer: str, lanes: dict[str, str], count: int,
                        block_ms: int | None) -> list[QueuedJob]:
        for stream in lanes:
            await self.ensure_group(stream)
        reply = await self._with_group(list(lanes), self.redis.xreadgroup(
            WORKER_GROUP, consumer, {stream: ">" for stream in lanes}, count=count,
            block=block_ms), empty=[])
        return [_parse(stream, lanes[stream], entry_id, fields, 1)
                for stream, entries in (reply or []) for entry_id, fields in entries]

    async def _with_group(self, streams: list[str], command, empty: list):
        """Run a group command; if Redis lost a group, recreate them and return empty."""
        try:
            return await command
        except redis.ResponseError as error:
            # NOGROUP: the group is gone; UNBLOCKED (Redis 7): the stream went while we waited.
            if not str(error).startswith(("NOGROUP", "UNBLOCKED")):
                raise
            log.warning("the worker group of %s was gone (Redis restarted or flushed); "
                        "recreated it", ", ".join(streams))
            self._groups.difference_update(streams)
            for stream in streams:
                await self.ensure_group(stream)
            return empty

    async def _delivery_counts(self, stream: str, entry_ids: list[str]) -> dict[str, int]:
        counts = {}
        for entry_id in entry_ids:
            pending = await self.redis.xpending_range(stream, WORKER_GROUP, entry_id, entry_id, 1)
            counts[entry_id] = pending[0]["times_delivered"] if pending else 1
        return counts

    async def _drop_unusable(self, consumer: str,
                             taken: list[QueuedJob | InvalidEntry]) -> list[QueuedJob]:
        """Dead-letter entries that are not valid jobs or were delivered too often; drop
        the entries of jobs already done (a duplicate must not run the GPU again)."""
        usable = []
        for job in taken:
            if isinstance(job, QueuedJob) and await self.is_done(job.job_id, job.request):
                log.warning("job %s is done already; dropped its extra entry", job.job_id)
                await self._discard(keys=[job.stream], args=[WORKER_GROUP, consumer, job.entry_id])
            elif isinstance(job, InvalidEntry):
                await self.dead_letter(consumer, job, f"not a valid job: {job.reason}")
            elif job.deliveries > self.max_deliveries:
                await self.dead_letter(consumer, job, await self._dead_reason(job))
            else:
                usable.append(job)
        return usable

    async def _dead_reason(self, job: QueuedJob) -> str:
        last_error = await self.redis.get(self.keys.last_error(job.job_id))
        cause = f"last error: {last_error}" if last_error else "its worker stopped each time"
        return f"delivered {job.deliveries} times without finishing ({cause})"

    async def renew(self, consumer: str, jobs: Iterable[QueuedJob]) -> set[str]:
        """Extend the lease of the jobs this consumer still owns; returns their entry ids."""
        renewed: set[str] = set()
        for stream, ids in _by_stream(jobs).items():
            renewed.update(await _unless_group_lost(
                self._renew(keys=[stream], args=[WORKER_GROUP, consumer, *ids]), []))
        return renewed

    async def release(self, consumer: str, jobs: Iterable[QueuedJob]) -> int:
        """Give owned jobs back for any worker to take at once (a worker shutting down)."""
        released = 0
        for stream, ids in _by_stream(jobs).items():
            released += await _unless_group_lost(self._release(
                keys=[stream], args=[WORKER_GROUP, consumer, self.lease_ms, *ids]), 0)
        return released

    async def complete(self, consumer: str, job: QueuedJob, outcome: dict[str, str]) -> bool:
        """Report the job's outcome and remove it from the queue, if consumer still owns it.

        False means the lease was lost and another worker has (or will report) the job.
        """
        fields = {"job": job.job_id, **outcome}
        return await self._finish_entry(consumer, job, fields, dead=None)

    async def fail_attempt(self, job: QueuedJob, error: str) -> None:
        """Remember why this attempt failed; the entry is redelivered once its lease lapses."""
        await self.redis.set(self.keys.last_error(job.job_id), error[:2000], ex=CANCEL_TTL_S)

    async def dead_letter(self, consumer: str, job: QueuedJob | InvalidEntry, reason: str) -> bool:
        """Copy the job to the dead-letter stream with reason, report it dead, acknowledge it."""
        log.error("job %s is dead: %s", job.job_id, reason)
        dead = {"job": job.job_id, "request": job.request_text, "reason": reason,
                "stream": job.stream, "deliveries": str(job.deliveries)}
        outcome = {"job": job.job_id, "status": "dead", "error": reason}
        return await self._finish_entry(consumer, job, outcome, dead=dead)

    async def _finish_entry(self, consumer: str, job: QueuedJob | InvalidEntry, outcome: dict,
                            dead: dict | None) -> bool:
        keys = [job.stream, self.keys.results, self.keys.entries, self.keys.done(job.job_id)] + (
            [self.keys.dead] if dead else [])
        args = [WORKER_GROUP, consumer, job.entry_id, _flat(outcome), job.job_id,
                DONE_TTL_S] + ([_flat(dead)] if dead else [])
        # If Redis lost the group, the entry went with it: the reconciler re-enqueues the job.
        return bool(await _unless_group_lost(self._finish(keys=keys, args=args), False))

    async def publish_progress(self, job_id: str, event: dict) -> None:
        await self.redis.publish(self.keys.progress(job_id), json.dumps(event))


async def _unless_group_lost(command, lost):
    """The reply of a script, or `lost` if Redis no longer has the group (NOGROUP)."""
    try:
        return await command
    except redis.ResponseError as error:
        if "NOGROUP" not in str(error):
            raise
        return lost


def _parse(stream: str, lane: str, entry_id: str, fields: dict,
           deliveries: int) -> QueuedJob | InvalidEntry:
    job_id, text = fields.get("job", ""), fields.get("request", "")
    try:
        request = GenerationRequest.from_json(text)
    except (InvalidRequest, RecursionError) as error:  # the stream is an input too
        reason = str(error) if isinstance(error, InvalidRequest) else "nested too deeply"
        return InvalidEntry(job_id or entry_id, stream, entry_id, text[:2000], reason,
                            deliveries)
    if not job_id:
        return InvalidEntry(entry_id, stream, entry_id, text, "the entry has no job id",
                            deliveries)
    return QueuedJob(job_id, request, lane, stream, entry_id, deliveries)


def _by_stream(jobs: Iterable[QueuedJob]) -> dict[str, list[str]]:
    streams: dict[str, list[str]] = {}
    for job in jobs:
        streams.setdefault(job.stream, []).append(job.entry_id)
    return streams


def _flat(fields: dict[str, str]) -> str:
    """Field/value pairs as one JSON array, for XADD inside a script."""
    return json.dumps([str(x) for pair in fields.items() for x in pair])
