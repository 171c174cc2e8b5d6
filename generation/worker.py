"""A worker process: one sampling pool, served until SIGTERM.

On SIGTERM (or Ctrl-C) it takes no new jobs and gives the batch in hand a
grace period to finish; past it, the running batch stops at its next step
and its jobs are released for other workers to take at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from generation.pool import SamplingPool

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
