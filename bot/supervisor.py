"""Background tasks that must outlive any one failure: delivery, the progress relay and the
reconciler. Each runs under `supervise`, which restarts it after an error (Redis timing
out, PostgreSQL restarting, a bug) with exponential backoff and a log line; a task that
died for good would leave results undelivered and jobs re-run by the reconciler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

BASE_S, CAP_S = 1.0, 60.0
HEALTHY_S = 60.0  # a task that ran this long before failing starts again from BASE_S


async def supervise(name: str, run: Callable[[], Awaitable[None]], base_s: float = BASE_S,
                    cap_s: float = CAP_S) -> None:
    """Run run() for ever: after it raises (or returns), wait and start it again."""
    loop, delay = asyncio.get_running_loop(), base_s
    while True:
        began = loop.time()
        failure: Exception | None = None
        try:
            await run()
        except Exception as error:  # any failure restarts the task
            failure = error
        stop_if_cancelled()
        if loop.time() - began >= HEALTHY_S:
            delay = base_s
        log.error("background task %s stopped (%s); restarting in %g s", name,
                  repr(failure) if failure else "it returned", delay, exc_info=failure)
        await asyncio.sleep(delay)
        delay = min(cap_s, delay * 2)


def stop_if_cancelled() -> None:
    """Raise CancelledError when this task has been cancelled, though the cancel was
    swallowed on its way: redis-py can lose one that lands during a blocking command
    (redis/redis-py#2028). A loop that went on would hold the process's shutdown for ever
    (asyncio.run waits for every cancelled task), so each loop asks at every turn."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
