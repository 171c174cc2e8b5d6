"""A worker process: one sampling pool, served until SIGTERM.

On SIGTERM (or Ctrl-C) it takes no new jobs and gives the batch in hand a
grace period to finish; past it, the running batch stops at its next step
and its jobs are released for other workers to take at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from generation.contract import GenerationRequest, JobKind
from generation.engine import Engine
from generation.metrics import WorkerMetrics
from generation.pool import SamplingPool
from generation.registry import ModelSpec

log = logging.getLogger(__name__)


async def serve(pool: SamplingPool, grace_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s serving %s", pool.consumer, ", ".join(pool.engines))
    running = asyncio.create_task(pool.run(stop))
    await asyncio.wait([running, asyncio.create_task(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    log.info("stopping: finishing the batch in hand (up to %g s)", grace_s)
    try:
        await asyncio.wait_for(asyncio.shield(running), grace_s)
    except TimeoutError:
        released = await pool.release_all()
        log.warning("grace period over: released %d job(s) to other workers", released)
        await running
    await pool.queue.redis.aclose()
    log.info("worker %s stopped", pool.consumer)


def local_devices() -> list[str]:
    """Every local GPU, or the CPU when there is none."""
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]


def load_engines(specs: list[ModelSpec], metrics: WorkerMetrics,
                 device: str | None = None) -> dict[str, Engine]:
    """Load each model's pipeline, timing each for dreamloop_worker_model_load_seconds."""
    engines = {}
    for spec in specs:
        started = time.monotonic()
        engines[spec.name] = Engine.load(spec, device=device)
        metrics.load_seconds.labels(spec.name).set(time.monotonic() - started)
    return engines


async def warm_up(pool: SamplingPool) -> None:
    """One small call per model on the pool's GPU thread before the first member's job:
    kernels, the allocator and the schedulers' caches are set up, so a worker that says it
    is ready draws at full speed."""
    for name, engine in pool.engines.items():
        started = time.monotonic()
        request = _warm_up_request(engine.spec)
        await pool.on_gpu_thread(lambda engine=engine, request=request: engine.run(request))
        pool.metrics.warm_seconds.labels(name).set(time.monotonic() - started)
        log.info("model %s warmed in %.1f s", name, time.monotonic() - started)


def _warm_up_request(spec: ModelSpec) -> GenerationRequest:
    return GenerationRequest(kind=JobKind.IMAGINE, prompt="warm-up", model=spec.name,
                             width=spec.base_resolution, height=spec.base_resolution,
                             steps=1, guidance=spec.guidance, sampler=spec.sampler, seed=0,
                             num_images=1)
