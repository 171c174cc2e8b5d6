"""/forget-me end to end: the bot and a worker on the tiny model, the Discord double, real
PostgreSQL and Redis. Keep my data deletes nothing; another member cannot confirm; after
confirming, no row, blob, Redis entry or export names the member, and their queued jobs (in
the workers' stream, and waiting behind them in PostgreSQL) never run and are never posted."""

from __future__ import annotations

import asyncio

import pyarrow.parquet as pq
import pytest

from bot.forget_me import KEPT, NOT_YOURS
from generation.queue import JobQueue
from tests.bot_stack import is_grid, reply_to, serving, told
from tests.test_cli import dreamloop
from tests.test_exports import SALT, member_hash
from tests.test_forget import redis_mentions, rows_mentioning
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def stack_overrides() -> dict[str, str]:
    return {"DREAMLOOP_EXPORT_SALT": SALT}


async def bobs_jobs(db, bob: int) -> list:
    async with db.acquire() as conn:
        return await conn.fetch("SELECT id, status, dispatched_at FROM jobs "
                                "WHERE member_id = $1 ORDER BY id", bob)


async def ask(double, member: str = "bob"):
    """/forget-me, and its confirmation message."""
    asked = await double.slash(member, "general", "forget-me")
    text = await reply_to(double, asked)
    return text, double.messages[asked.original_message_id]


def kto_hashes(folder) -> set[int]:
    return set(pq.read_table(folder / "kto.parquet").column("user_id").to_pylist())


async def test_forget_me_forgets_everything_and_only_when_they_confirm(
        double, db, stack, redis_client, keys, tmp_path):
    queue, bob = JobQueue(redis_client, keys), double.user_id("bob")
    await serving(queue, "tiny-random")
    await double.slash("bob", "general", "imagine", prompt="bob's kite", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    done = int(grid.custom_ids()[0].split(":")[2])
    await double.click("bob", grid, f"dl:u:{done}:1")  # feedback, and implied comparisons
    await double.wait_for_message("general", lambda m: "— Image #1 <@" in m.content)
    env = stack.env | {"DREAMLOOP_EXPORT_SALT": SALT}
    before = tmp_path / "export-before"
    assert dreamloop("export", "--format", "kto", "--out", str(before), env=env).returncode == 0
    assert member_hash(bob) in kto_hashes(before)

    # No GPU now: 3 jobs go to the stream (bob's concurrent cap), the 4th waits behind them.
    stack.workers[0].stop()
    for n in range(4):
        await double.slash("bob", "general", "imagine", prompt=f"bob queued {n}",
                           model="tiny-random")
    await double._until(lambda: sum("bob queued" in m.content for m in
                                    double.channel_messages("general")) == 4, 30, "not queued")
    jobs = await bobs_jobs(db, bob)
    assert sorted(j["dispatched_at"] is None for j in jobs) == [False] * 4 + [True]

    text, confirm = await ask(double)
    assert text.startswith("This deletes, for good: your 5 job(s) and their 4 image(s)")
    assert "4 unfinished job(s) are stopped" in text and "cannot be undone" in text
    assert confirm.custom_ids() == [f"dl:forget:yes:{bob}", f"dl:forget:no:{bob}"]
    kept = await double.click("bob", confirm, f"dl:forget:no:{bob}")
    await double.wait_for_callback(kept)
    assert double.messages[confirm.id].content == KEPT
    assert len(await bobs_jobs(db, bob)) == 5  # Keep my data deleted nothing

    _, confirm = await ask(double)
    await double.click("alice", confirm, f"dl:forget:yes:{bob}")  # a forged click
    await told(double, "alice", NOT_YOURS)
    assert len(await bobs_jobs(db, bob)) == 5
    await double.click("bob", confirm, f"dl:forget:yes:{bob}")
    await double._until(lambda: "You have been forgotten" in double.messages[confirm.id].content,
                        60, "bob was never told")
    told_bob = double.messages[confirm.id].content
    assert told_bob.startswith("Deleted: 5 job(s), 4 image(s) and ") and "bob" not in told_bob

    await after_the_forget(double, db, stack, redis_client, keys, jobs, bob, env, before,
                           grid.id)


async def after_the_forget(double, db, stack, redis_client, keys, jobs, bob, env, before,
                           grid_id):
    """A GPU again: only alice's job runs; nothing of bob's is left anywhere."""
    stack.workers.append(Worker(stack.env, stack.folder / "worker-2.log"))
    await double.slash("alice", "general", "imagine", prompt="alice's owl", model="tiny-random")
    await double.wait_for_message("general", lambda m: is_grid(m) and "alice's owl" in m.content,
                                  timeout=120)
    await asyncio.sleep(3)  # time for a wrongly kept job of bob's to be drawn and posted
    # Never drawn, never posted; their status messages and the grid are deleted.
    assert not [m.content for m in double.channel_messages("general") if "bob queued" in m.content]
    assert double.messages[grid_id].deleted
    async with db.acquire() as conn:
        assert await rows_mentioning(conn, bob) == []
        assert await conn.fetchval("SELECT member_hash FROM forgotten_members") == (
            member_hash(bob))
    ids = [j["id"] for j in jobs]
    assert not any((stack.blobs.root / "images" / str(i)).exists() for i in ids)
    assert await redis_mentions(redis_client, keys.prefix, ids, bob) == []
    after = before.parent / "export-after"
    assert dreamloop("export", "--format", "kto", "--out", str(after), env=env).returncode == 0
    assert member_hash(bob) not in kto_hashes(before) | kto_hashes(after)
