"""Hostile clicks: forged custom_ids (sent raw by the double, not from a button on the
message) and a flood of clicks from one member. Each click is answered ephemerally
(never "This interaction failed"), a forged one records nothing, and a flood makes no
more than the per-member click limit allows while other members go on unaffected."""

from __future__ import annotations

import asyncio

import pytest

from bot.click_guard import CLICK_WINDOW_S, CLICKS_PER_WINDOW, NOT_OURS
from tests.bot_stack import is_grid, told

pytestmark = pytest.mark.timeout(300)
GONE = "That image is gone."


def forged(job: int) -> list[str]:
    """custom_ids that are not on the clicked message (discord.py would drop them)."""
    return [
        "dl:u:987654321:1",  # no such job
        f"dl:u:{job}:0", f"dl:v:{job}:5", f"dl:u:{job}:99",  # wrong slots
        "dl:u:" + "9" * 120 + ":1",  # past 100 characters, past any bigint
        f"dl:v:{job}:1" + "x" * 100, f"dl:zz:{job}:1", f"dl:r:{job}:1", "dl:rate:1:maybe",
        "garbage \x00 💥", "", "dl:u:-1:1",
    ]


async def counts(db) -> tuple[int, int]:
    async with db.acquire() as conn:
        return (await conn.fetchval("SELECT count(*) FROM jobs"),
                await conn.fetchval("SELECT count(*) FROM feedback_events"))


async def logged(db, action: str) -> list:
    async with db.acquire() as conn:
        return await conn.fetch("SELECT target_id, detail FROM moderation_log "
                                "WHERE action = $1 ORDER BY id", action)


def ephemeral(double, member: str) -> list[str]:
    """What the member was told, ephemerally (not the empty "thinking…" placeholders)."""
    return [m.content for m in double.channel_messages("general", viewer=member)
            if m.payload["flags"] & 64 and m.content]


async def replies_after(double, member: str, seen: int, count: int = 1) -> list[str]:
    await double._until(lambda: len(ephemeral(double, member)) >= seen + count, 60,
                        f"{member} was not answered {count} time(s)")
    return ephemeral(double, member)[seen:]


async def answered(double, interactions) -> None:
    for interaction in interactions:
        await double.wait_for_callback(interaction, timeout=60)
        assert interaction.errors == [], interaction.errors  # e.g. 10062: past 3 seconds


async def test_forged_custom_ids_are_answered_and_record_nothing(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a forged fox", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job = int(grid.custom_ids()[0].split(":")[2])
    before, public = await counts(db), len(double.channel_messages("general"))
    for custom_id in forged(job):
        seen = len(ephemeral(double, "alice"))
        click = await double.click_raw("alice", grid, custom_id)
        await answered(double, [click])
        assert await replies_after(double, "alice", seen) == [NOT_OURS], custom_id
    # Real buttons of a job made in another server (a copied message), or of a job deleted
    # since (/forget-me): nothing is found, nothing recorded.
    async with db.acquire() as conn:
        await conn.execute("INSERT INTO guilds (id) VALUES ($1)", double.guild_id + 1)
        await conn.execute("UPDATE jobs SET guild_id = guild_id + 1 WHERE id = $1", job)
    for custom_id, reply in ((f"dl:u:{job}:1", GONE), (f"dl:r:{job}", "That job is gone.")):
        await answered(double, [await double.click("bob", grid, custom_id)])
        await told(double, "bob", reply)
    assert await counts(db) == before  # no job, no feedback event
    assert len(await logged(db, "button_refused")) == len(forged(job))
    assert len(double.channel_messages("general")) == public  # no image posted
    assert double.unhandled == []
    # The bot still serves: a real click on a real grid works.
    async with db.acquire() as conn:
        await conn.execute("UPDATE jobs SET guild_id = guild_id - 1 WHERE id = $1", job)
    await answered(double, [await double.click("bob", grid, f"dl:u:{job}:2")])
    await told(double, "bob", "Image #2 is below.")


async def test_a_flood_of_clicks_is_held_to_the_member_limit(double, db, stack, redis_client,
                                                             keys):
    await double.slash("alice", "general", "imagine", prompt="a busy fox", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    buttons = grid.custom_ids()  # U1–U4, 🔄, V1–V4
    jobs_before, _ = await counts(db)
    seen = len(ephemeral(double, "alice"))
    clicks = await asyncio.gather(*(double.click("alice", grid, buttons[i % len(buttons)])
                                    for i in range(30)))
    await answered(double, clicks)
    told_alice = await replies_after(double, "alice", seen, 30)
    slow = [text for text in told_alice if text.startswith("Slow down")]
    assert len(slow) == 30 - CLICKS_PER_WINDOW
    seconds = {int(text.split("again in ")[1].split(" ")[0]) for text in slow}
    assert seconds <= set(range(1, CLICK_WINDOW_S + 1))
    assert slow[0].startswith(f"Slow down: at most {CLICKS_PER_WINDOW} clicks in "
                              f"{CLICK_WINDOW_S} s. Try again in ")
    jobs_after, events = await counts(db)
    assert events <= CLICKS_PER_WINDOW and jobs_after - jobs_before <= CLICKS_PER_WINDOW
    [slowed] = await logged(db, "clicks_slowed")  # once, not once a click
    assert slowed["target_id"] == double.user_id("alice")
    # Counted in Redis, so another bot process sees the same count.
    assert int(await redis_client.get(keys.clicks(double.user_id("alice")))) == 30
    # bob is not held back by alice's flood.
    await answered(double, [await double.click("bob", grid, buttons[1])])
    await told(double, "bob", "Image #2 is below.")


async def test_a_flood_of_rate_votes_is_held_to_the_same_limit(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a busy owl", model="tiny-random")
    await double.wait_for_message("general", is_grid, timeout=120)
    await double.slash("bob", "general", "rate")
    shown = await double.wait_for_message(
        "general", lambda m: m.custom_ids()[:1] and m.custom_ids()[0].startswith("dl:rate:"),
        viewer="bob")
    seen = len(ephemeral(double, "bob"))
    vote = shown.custom_ids()[0]
    clicks = await asyncio.gather(*(double.click("bob", shown, vote) for _ in range(30)))
    await answered(double, clicks)
    slow = await replies_after(double, "bob", seen, 30 - CLICKS_PER_WINDOW)
    assert len(slow) == 30 - CLICKS_PER_WINDOW and all(t.startswith("Slow down") for t in slow)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM rate_pairs WHERE label IS NOT NULL"
                                   ) <= CLICKS_PER_WINDOW
