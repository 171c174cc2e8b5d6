"""Lanes end to end: /fast and /relax set a member's default lane, --fast, --relax and
--turbo choose one job's, and a lane no worker serves falls back, saying so."""

from __future__ import annotations

import asyncio

import pytest

from generation.queue import JobQueue
from tests.bot_stack import is_grid, reply_to, serving, told
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(300)


async def lane_of(db, interaction) -> str | None:
    async with db.acquire() as conn:
        return await conn.fetchval("SELECT lane FROM jobs WHERE interaction_id = $1",
                                   interaction.id)


async def imagine(double, member: str, prompt: str):
    interaction = await double.slash(member, "general", "imagine", prompt=prompt,
                                     model="tiny-random")
    await double.wait_for_message("general", lambda m: f"{prompt.split(' --')[0]}**"
                                  in m.content)
    return interaction


async def test_relax_and_fast_set_the_default_lane_and_a_flag_wins(double, db, stack):
    said = await double.slash("bob", "general", "relax")
    assert "Your jobs now run in the relax lane" in await reply_to(double, said)
    kite = await imagine(double, "bob", "a kite")
    assert await lane_of(db, kite) == "relax"
    await told(double, "bob", "in the relax lane (your choice: it saves your fast GPU time)")
    hurried = await imagine(double, "bob", "a swift kite --fast")
    assert await lane_of(db, hurried) == "fast"  # the prompt's flag wins for its job

    said = await double.slash("bob", "general", "fast")
    assert "Your jobs now run in the fast lane" in await reply_to(double, said)
    box = await imagine(double, "bob", "a box")
    assert await lane_of(db, box) == "fast"
    async with db.acquire() as conn:
        settings = await conn.fetchval("SELECT settings FROM members WHERE id = $1",
                                       double.user_id("bob"))
    assert settings["lane"] == "fast"  # kept in PostgreSQL: it outlives the bot


async def test_turbo_is_drawn_in_its_own_lane(double, db, stack):
    owl = await imagine(double, "alice", "a turbo owl --turbo")
    assert await lane_of(db, owl) == "turbo"
    await told(double, "alice", "in the turbo lane (first in line; it counts twice")
    await double._until(lambda: any(is_grid(m) and "a turbo owl" in m.content
                                    for m in double.channel_messages("general")),
                        120, "the turbo job was not drawn")


async def test_a_lane_no_worker_serves_falls_back_with_a_message(double, db, stack, redis_client,
                                                                  keys):
    for worker in stack.workers:
        worker.stop()
    queue = JobQueue(redis_client, keys, lease_ms=int(stack.env["DREAMLOOP_LEASE_MS"]))
    while await queue.serving_count("tiny-random", "turbo"):  # its last announce ages out
        await asyncio.sleep(0.2)
    stack.workers.append(Worker(stack.env, stack.folder / "fast-worker.log",
                                "--lane", "fast", "--lane", "relax"))
    await serving(queue, "tiny-random")
    owl = await imagine(double, "alice", "a hasty owl --turbo")
    await told(double, "alice", "No worker serves the turbo lane of tiny-random now, so this "
                                "job runs in the fast lane.")
    assert await lane_of(db, owl) == "fast"
    await double._until(lambda: any(is_grid(m) and "a hasty owl" in m.content
                                    for m in double.channel_messages("general")),
                        120, "the job that fell back was not drawn")
