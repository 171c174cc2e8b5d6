"""The sampling pool: one per GPU. Takes jobs from the queue, samples compatible ones
together, stores their images and reports them.

Three things run at once, so none waits on another:
- the event loop talks to Redis: taking jobs, renewing leases, watching cancel flags,
  publishing progress;
- one GPU thread runs the pipeline calls, one batch at a time;
- one CPU thread classifies (generation/safety.py), encodes and stores the previous
  batch's images while the GPU samples the next.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import redis.asyncio as redis
from PIL import Image

from generation.blobs import BlobStore, grid_key, image_key
from generation.contract import GenerationResult, ResultImage
from generation.engine import Cancelled, Engine, Progress, split_by_sizes
from generation.images import encode_grid, encode_png, make_grid
from generation.job_inputs import JobInputs, load_inputs, needs_inputs
from generation.keys import LANES, WORKER_GROUP
from generation.metrics import WorkerMetrics
from generation.queue import JobQueue, QueuedJob
from generation.safety import Verdict, load_classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSettings:
    max_batch: int = 4  # jobs per pipeline call
    coalesce_ms: int = 0  # wait this long for batch-mates; 0 = never (right for large models)
    relax_max_wait_ms: int = 120_000  # a relax job older than this goes before fast ones
    preview_interval_s: float = 1.5  # at most one progress event per job this often
    block_ms: int = 1000  # how long one wait for new jobs lasts
    lanes: tuple[str, ...] = LANES
    image_classifier: str = "nudenet"  # generation/safety.py: nudenet or none


@dataclass(frozen=True)
class JobStats:
    """How one job went through the pool; the worker logs it and benchmarks read it."""

    job_id: str
    waited_ms: int  # enqueue → sampling started
    gpu_ms: int  # its share of the batch's pipeline call
    batch_size: int


class SamplingPool:
    def __init__(self, engines: dict[str, Engine], queue: JobQueue, blobs: BlobStore,
                 consumer: str, settings: PoolSettings = PoolSettings(),
                 metrics: WorkerMetrics | None = None):
        self.engines, self.queue, self.blobs = engines, queue, blobs
        self.consumer, self.settings = consumer, settings
        self.metrics = metrics or WorkerMetrics()  # its own registry unless one is shared
        self.in_hand: dict[str, QueuedJob] = {}  # entry id → job, for lease renewal
        self.cancelled: set[str] = set()  # job ids flagged, read by the GPU thread
        self.stats: deque[JobStats] = deque(maxlen=10_000)
        self.aborting = False  # set on shutdown: the running batch stops at its next step
        self._gpu = ThreadPoolExecutor(1, thread_name_prefix="gpu")
        self._cpu = ThreadPoolExecutor(1, thread_name_prefix="encode")
        self._finishing: asyncio.Task | None = None
        self.classifier = load_classifier(settings.image_classifier)  # once per worker

    # -- the main loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Serve jobs until stop is set; the batch in hand is finished before returning."""
        for stream, _ in await self._stream_order():
            await self.queue.ensure_group(stream)
        await self.queue.announce(self.consumer, list(self.engines), self.settings.lanes)
        helpers = [asyncio.create_task(self._renew_leases()),
                   asyncio.create_task(self._watch_cancels())]
        try:
            while not stop.is_set():
                await self._serve_once()
            await self._await_finishing()
        finally:
            for helper in helpers:
                helper.cancel()

    async def _serve_once(self) -> None:
        try:
            for batch in _batches(await self._take(), self.settings.max_batch):
                await self._run_batch(batch)
        except Exception:
            # A worker that dies on a surprise loses its jobs' leases anyway; staying up
            # keeps serving the others. Whatever was in hand is redelivered after its lease.
            log.exception("unexpected error in the sampling loop; carrying on in 1 s")
            self.in_hand.clear()
            await asyncio.sleep(1)

    async def on_gpu_thread(self, work: Callable[[], object]) -> object:
        """Run work on the pool's GPU thread (warm-ups, and baselines measured like for like:
        CPU math libraries keep per-thread worker teams, so the thread matters)."""
        return await asyncio.get_running_loop().run_in_executor(self._gpu, work)

    async def release_all(self) -> int:
        """Give every job in hand back to the queue (shutdown past its grace period)."""
        self.aborting = True
        released = await self.queue.release(self.consumer, list(self.in_hand.values()))
        self.in_hand.clear()
        return released

    async def _take(self) -> list[QueuedJob]:
        try:
            # The jobs in hand are never taken again: after a Redis hang longer than a lease
            # this worker's own claim finds them lapsed, while it still runs or reports them.
            holding = set(self.in_hand)
            jobs = await self.queue.take(self.consumer, await self._stream_order(),
                                         self.settings.max_batch, self.settings.block_ms,
                                         holding=holding)
            if jobs and self.settings.coalesce_ms and len(jobs) < self.settings.max_batch:
                await asyncio.sleep(self.settings.coalesce_ms / 1000)
                jobs += await self.queue.take(self.consumer, await self._stream_order(),
                                              self.settings.max_batch - len(jobs),
                                              holding=holding)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as error:
            log.warning("Redis is unreachable (%s); trying again in 1 s", error)
            await asyncio.sleep(1)
            return []
        self.in_hand.update({job.entry_id: job for job in jobs})
        return jobs

    async def _stream_order(self) -> list[tuple[str, str]]:
        """Fast lanes first, unless a relax job has waited past its limit (no starvation)."""
        order = []
        for model in self.engines:
            lanes = {lane: self.queue.keys.jobs(model, lane) for lane in self.settings.lanes}
            overdue = "relax" in lanes and await self._oldest_new_ms(lanes["relax"]) > (
                self.settings.relax_max_wait_ms)
            ranked = sorted(lanes, key=lambda lane: (lane != "relax") if overdue else (
                LANES.index(lane)))
            order += [(lanes[lane], lane) for lane in ranked]
        return order

    async def _oldest_new_ms(self, stream: str) -> int:
        """How long the first entry not yet handed out has waited, in ms (0 if none)."""
        try:
            groups = await self.queue.redis.xinfo_groups(stream)
        except redis.ResponseError:
            return 0  # no stream yet
        last = next((g["last-delivered-id"] for g in groups if g["name"] == WORKER_GROUP), "0-0")
        entries = await self.queue.redis.xrange(stream, min=f"({last}", count=1)
        if not entries:
            return 0
        return int(time.time() * 1000) - int(entries[0][0].split("-")[0])

    # -- one batch -------------------------------------------------------------------------

    async def _run_batch(self, batch: list[QueuedJob]) -> None:
        batch = await self._skip_cancelled(batch)
        inputs = await self._load_inputs(batch)
        batch = [job for job in batch if job.entry_id in self.in_hand]  # inputs that failed
        if not batch:
            return
        started = time.time()
        try:
            images = await self._sample(batch, [inputs.get(j.entry_id, JobInputs())
                                                for j in batch])
        except Cancelled:
            await self._after_cancel(batch)
            return
        except Exception as error:  # any failure is the batch's: retried singly
            await self._after_failure(batch, error)
            return
        await self._hand_over(batch, images, self._record_stats(batch, started))

    async def _skip_cancelled(self, batch: list[QueuedJob]) -> list[QueuedJob]:
        flagged = await self.queue.cancelled(job.job_id for job in batch)
        for job in batch:
            if job.job_id in flagged:
                await self._report(job, {"status": "cancelled", "error": "cancelled before "
                                         "it started"})
        return [job for job in batch if job.job_id not in flagged]

    async def _load_inputs(self, batch: list[QueuedJob]) -> dict[str, JobInputs]:
        """The parent, mask and reference images of each job that names any."""
        inputs = {}
        for job in batch:
            if not needs_inputs(job.request):
                continue
            try:
                inputs[job.entry_id] = await asyncio.to_thread(load_inputs, self.blobs,
                                                               job.request)
            except Exception as error:  # a missing or bad image fails its job alone
                await self._fail_attempt(job, f"cannot read the job's images: {error}")
        return inputs

    async def _sample(self, batch: list[QueuedJob],
                      inputs: list[JobInputs]) -> list[list[Image.Image]]:
        engine = self.engines[batch[0].request.model]
        requests = [job.request for job in batch]
        ids = {job.job_id for job in batch}
        progress = self._progress_publisher(batch)

        def should_cancel() -> bool:
            return self.aborting or not ids.isdisjoint(self.cancelled)

        return await self.on_gpu_thread(
            lambda: engine.run_batch(requests, [i.parent for i in inputs], progress,
                                     should_cancel, inputs=inputs))

    async def _after_cancel(self, batch: list[QueuedJob]) -> None:
        if self.aborting:
            return  # shutting down: the jobs are released, not cancelled
        for job in batch:
            if job.job_id in self.cancelled:
                await self._report(job, {"status": "cancelled", "error": "cancelled while "
                                         "running"})
        rest = [job for job in batch if job.job_id not in self.cancelled]
        if rest:
            await self._run_batch(rest)  # batch-mates of a cancelled job run on without it

    async def _after_failure(self, batch: list[QueuedJob], error: Exception) -> None:
        if len(batch) > 1:
            log.warning("a batch of %d failed (%s); running its jobs one by one", len(batch),
                        error)
            for job in batch:
                await self._run_batch([job])
            return
        await self._fail_attempt(batch[0], f"{type(error).__name__}: {error}")

    async def _fail_attempt(self, job: QueuedJob, error: str) -> None:
        """Renew the lease once more, then stop: the job is redelivered a whole lease later
        (a backoff, never a hot loop) and dead-lettered once delivered too often."""
        log.warning("job %s failed on delivery %d: %s", job.job_id, job.deliveries, error)
        await self.queue.fail_attempt(job, error)
        await self.queue.renew(self.consumer, [job])
        self.in_hand.pop(job.entry_id, None)
        self.metrics.job(job.request.model, job.request.kind.value, "failed")

    def _record_stats(self, batch: list[QueuedJob], started: float) -> dict[str, JobStats]:
        elapsed_ms = int((time.time() - started) * 1000)
        images = sum(job.request.num_images for job in batch)
        self.metrics.batch(batch[0].request.model, len(batch))
        recorded = {}
        for job in batch:
            stats = JobStats(job.job_id, int(started * 1000) - job.enqueued_ms,
                             elapsed_ms * job.request.num_images // images, len(batch))
            self.stats.append(stats)
            recorded[job.job_id] = stats
            log.info("job %s: waited %d ms, gpu %d ms, batch of %d", stats.job_id,
                     stats.waited_ms, stats.gpu_ms, stats.batch_size)
        return recorded

    # -- storing and reporting -------------------------------------------------------------

    async def _hand_over(self, batch: list[QueuedJob], images: list[list[Image.Image]],
                         stats: dict[str, JobStats]) -> None:
        """Store and report in the background, so the GPU can start the next batch now."""
        await self._await_finishing()  # at most one batch waits for encoding: bounded memory
        self._finishing = asyncio.create_task(self._store_and_report(batch, images, stats))

    async def _await_finishing(self) -> None:
        finishing, self._finishing = self._finishing, None
        if finishing is not None:
            await finishing  # never raises: _store_and_report handles each job's failure

    async def _store_and_report(self, batch, images, stats) -> None:
        for job, job_images in zip(batch, images, strict=True):
            try:
                await self._store_and_report_one(job, job_images, stats[job.job_id], len(batch))
            except Exception as error:  # a failed upload or report fails that job alone
                await self._fail_attempt(job, f"storing or reporting failed: {error}")

    async def _store_and_report_one(self, job, job_images, stats, batch_size) -> None:
        started = time.time()
        verdicts = await asyncio.get_running_loop().run_in_executor(
            self._cpu, lambda: self.classifier.classify(job_images, job.request.seeds))
        classified = time.time()
        result_images = await asyncio.get_running_loop().run_in_executor(
            self._cpu, lambda: self._store(job, job_images, verdicts))
        result = GenerationResult(
            job_id=job.job_id, images=result_images, gpu_ms=stats.gpu_ms,
            encode_ms=int((time.time() - classified) * 1000), batch_size=batch_size,
            classify_ms=int((classified - started) * 1000))
        flagged = sum(image.flagged for image in result_images)
        log.info("job %s: classified in %d ms, %d flagged", job.job_id, result.classify_ms,
                 flagged)
        self.metrics.classified(job.request.model, result.classify_ms, flagged)
        await self._report(job, {"status": "succeeded", "result": result.to_json()},
                           stats.gpu_ms)

    def _store(self, job: QueuedJob, images: list[Image.Image],
               verdicts: list[Verdict]) -> tuple[ResultImage, ...]:
        """PNG each image and the grid under deterministic keys: a retry overwrites."""
        stored = []
        for slot, (seed, image, verdict) in enumerate(
                zip(job.request.seeds, images, verdicts, strict=True), 1):
            data = encode_png(image)
            self.blobs.put(image_key(job.job_id, slot), data, "image/png")
            stored.append(ResultImage(slot=slot, seed=seed, key=image_key(job.job_id, slot),
                                      width=image.width, height=image.height,
                                      sha256=hashlib.sha256(data).hexdigest(),
                                      flagged=verdict.flagged, labels=verdict.labels))
        self.blobs.put(grid_key(job.job_id), encode_grid(make_grid(images), "webp"), "image/webp")
        return tuple(stored)

    async def _report(self, job: QueuedJob, outcome: dict[str, str],
                      gpu_ms: int | None = None) -> None:
        if await self.queue.complete(self.consumer, job, outcome):
            self.metrics.job(job.request.model, job.request.kind.value, outcome["status"],
                             gpu_ms)
        else:
            log.warning("job %s: lease lost to another worker; its result is theirs to report",
                        job.job_id)
        self.in_hand.pop(job.entry_id, None)

    # -- background duties -----------------------------------------------------------------

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.queue.lease_ms / 3000)
            snapshot = list(self.in_hand.values())  # jobs taken during the call are not judged
            try:
                await self.queue.announce(self.consumer, list(self.engines), self.settings.lanes)
                owned = await self.queue.renew(self.consumer, snapshot)
            except (redis.RedisError, OSError) as error:
                log.warning("lease renewal failed (%s); trying again", error)
                continue
            for entry_id in {job.entry_id for job in snapshot} - owned:
                # Another worker has it now; ours may finish but cannot report (queue.py).
                job = self.in_hand.pop(entry_id, None)
                if job is not None:
                    log.warning("job %s: lease lost", job.job_id)

    async def _watch_cancels(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            try:
                jobs = [job.job_id for job in self.in_hand.values()]
                self.cancelled = await self.queue.cancelled(jobs)
            except (redis.RedisError, OSError):
                continue

    def _progress_publisher(self, batch: list[QueuedJob]) -> Callable[[Progress], None]:
        """Called on the GPU thread each step; sends at most one event per interval."""
        loop = asyncio.get_running_loop()
        sizes = [job.request.num_images for job in batch]
        last_sent = [0.0]

        def publish(progress: Progress) -> None:
            now = time.monotonic()
            final = progress.step == progress.total
            if now - last_sent[0] < self.settings.preview_interval_s and not final:
                return
            last_sent[0] = now
            previews = split_by_sizes(progress.previews(), sizes)
            for job, job_previews in zip(batch, previews, strict=False):
                event = {"step": progress.step, "total": progress.total,
                         "preview": _preview_webp(job_previews)}
                asyncio.run_coroutine_threadsafe(
                    self.queue.publish_progress(job.job_id, event), loop)

        return publish


def _batches(jobs: list[QueuedJob], max_batch: int) -> list[list[QueuedJob]]:
    """Jobs grouped by what one pipeline call can share, in the order they were taken."""
    groups: dict[tuple, list[QueuedJob]] = {}
    for job in jobs:
        groups.setdefault(job.request.batch_key(), []).append(job)
    return [group[i:i + max_batch] for group in groups.values()
            for i in range(0, len(group), max_batch)]


def _preview_webp(previews: list[Image.Image]) -> str | None:
    """A small grid of the previews as base64 WebP, or None where none could be made."""
    if not previews:
        return None
    import base64

    buffer = io.BytesIO()
    make_grid(previews).save(buffer, "WEBP", quality=60, method=0)
    return base64.b64encode(buffer.getvalue()).decode()
