"""Limits and faults end to end: the concurrent cap, limits across a bot restart, and a
channel the bot can no longer post in."""

from __future__ import annotations

import asyncio

import pytest

from tests.bot_stack import BotProcess, is_grid, told
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(300)


async def test_a_4th_concurrent_job_waits_for_a_slot_and_is_then_drawn(double, db, stack):
    for worker in stack.workers:
        worker.stop()
    for n in range(4):
        await double.slash("alice", "general", "imagine", prompt=f"lamp {n}",
                           model="tiny-random")
        await double.wait_for_message("general", lambda m, n=n: f"lamp {n}**" in m.content)
    statuses = [m.content for m in double.channel_messages("general")]
    assert [("queued (#" in s, "waiting: 3 of your jobs are in progress" in s)
            for s in statuses] == [(True, False)] * 3 + [(False, True)]
    stack.workers.append(Worker(stack.env, stack.folder / "late-worker.log"))
    await double._until(lambda: sum(is_grid(m) for m in double.channel_messages("general"))
                        == 4, 180, "not all four grids arrived")


async def test_limits_hold_across_a_bot_restart(double, db, stack):
    stack.bot.kill()
    env = stack.env | {"DREAMLOOP_JOBS_PER_MINUTE": "2"}
    stack.bot = BotProcess(env, stack.folder / "bot-limited.log")
    stack.bot.start()
    await double._until(lambda: double.identify_count >= 2, 60, "the bot did not reconnect")
    for n in range(3):
        await double.slash("bob", "general", "imagine", prompt=f"moth {n}", model="tiny-random")
        await asyncio.sleep(0.3)
    await told(double, "bob", "You started 2 jobs in the last minute, the most allowed")
    stack.bot.kill()
    stack.bot.start()
    await double._until(lambda: double.identify_count >= 3, 60, "the bot did not reconnect")
    await double.slash("bob", "general", "imagine", prompt="moth 3", model="tiny-random")
    await double._until(lambda: sum("the most allowed" in m.content for m in
                                    double.channel_messages("general", viewer="bob")) == 2,
                        30, "the limit did not hold after the restart")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 2


async def test_progress_goes_on_after_the_bot_restarts(double, db, stack):
    # No worker until the new bot is up: the job must run after the restart, whatever the
    # speed of the machine (with a worker running, a fast one finished it during the restart).
    for worker in stack.workers:
        worker.stop()
    await double.slash("alice", "general", "imagine", prompt="a slow owl --steps 150",
                       model="tiny-random")
    status = await double.wait_for_message("general", lambda m: "a slow owl" in m.content)
    for _ in range(100):  # the status message's id is recorded just after it is posted
        async with db.acquire() as conn:
            if await conn.fetchval("SELECT status_message_id FROM jobs"):
                break
        await asyncio.sleep(0.1)
    stack.bot.kill()
    before = status.content
    stack.bot.start()
    await double._until(lambda: double.identify_count >= 2, 60, "the bot did not reconnect")
    stack.workers.append(Worker(stack.env, stack.folder / "late-worker.log"))
    await double._until(lambda: status.content != before and "%)" in status.content, 120,
                        "no progress edit after the restart")


async def test_a_channel_closed_to_the_bot_fails_the_job_after_one_attempt(double, db, stack):
    await double.slash("alice", "art", "imagine", prompt="a hidden cave", model="tiny-random")
    await double.wait_for_message("art", lambda m: "a hidden cave" in m.content)
    double.revoke_access("art")

    async def status() -> tuple:
        async with db.acquire() as conn:
            return tuple(await conn.fetchrow("SELECT status, error FROM jobs"))

    async def failed() -> bool:
        return (await status())[0] == "failed"

    for _ in range(600):
        if await failed():
            break
        await asyncio.sleep(0.2)
    assert (await status())[1].startswith("cannot post in its channel: Missing Access")
    await asyncio.sleep(2)
    assert double.refused_posts("art") == 1  # no retry storm


async def test_a_job_for_a_model_no_worker_serves_says_so(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a moon", model="sd15")
    await told(double, "alice", "No worker is drawing with sd15 right now: it starts when "
                                "one does.")
