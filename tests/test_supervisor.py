"""The supervisor restarts a failed background task, and stops when it is cancelled."""

from __future__ import annotations

import asyncio

from bot.supervisor import supervise


async def test_a_failing_task_is_started_again():
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) < 3:
            raise ConnectionError("Redis went away")
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("flaky", flaky, base_s=0.01, cap_s=0.01))
    while len(runs) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and len(runs) == 3


async def test_a_task_that_swallows_its_cancellation_is_not_started_again():
    runs, started = [], asyncio.Event()

    async def stubborn():
        runs.append(1)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if len(runs) == 1:
                return  # as a library might: the cancel is lost here (once, so a failing
            raise       # run of this test still ends)

    task = asyncio.create_task(supervise("stubborn", stubborn, base_s=0.01, cap_s=0.01))
    await started.wait()
    task.cancel()
    await asyncio.sleep(0.2)  # time for a restart, were there one
    assert task.done() and task.cancelled() and runs == [1]
