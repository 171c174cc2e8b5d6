"""/rate and the leaderboard end to end: the real bot and worker processes against the
Discord double. Two model versions draw one prompt; a member's U pick and another member's
/rate votes become comparisons, and /leaderboard changes with them."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from db.model_versions import ensure_model_version, set_traffic_weight
from generation.queue import JobQueue
from tests.bot_stack import is_grid, serving

pytestmark = pytest.mark.timeout(300)
PROMPT = "a lighthouse at dusk"


async def leaderboard(double, member: str = "carol") -> dict:
    """The /leaderboard embed, as the member sees it."""
    def boards():
        return [m for m in double.channel_messages("general", viewer=member)
                if m.embeds and m.embeds[0]["title"].startswith("Leaderboard")]

    shown = len(boards())
    await double.slash(member, "general", "leaderboard")
    await double._until(lambda: len(boards()) > shown, 60, "no leaderboard came")
    return boards()[-1].embeds[0]


async def grid_drawn_by(double, db, version: str, other: str, seen: set) -> object:
    """Alice's /imagine of PROMPT with no model named, routed to `version` alone."""
    async with db.acquire() as conn:
        await set_traffic_weight(conn, version, 1)
        await set_traffic_weight(conn, other, 0)
    await double.slash("alice", "general", "imagine", prompt=PROMPT)
    grid = await double.wait_for_message(
        "general", lambda m: is_grid(m) and m.id not in seen, timeout=120)
    seen.add(grid.id)
    return grid


async def vote_for(double, db, message, version: str) -> int:
    """Bob clicks the side `version` drew on the pair the message shows; the pair's id."""
    pair_id = int(message.custom_ids()[0].split(":")[2])
    async with db.acquire() as conn:
        left_version = await conn.fetchval(
            """SELECT v.name FROM rate_pairs AS p JOIN images AS i ON i.id = p.left_image_id
               JOIN model_versions AS v ON v.id = i.model_version_id WHERE p.id = $1""", pair_id)
    answer = "a" if left_version == version else "b"
    await double.click("bob", message, f"dl:rate:{pair_id}:{answer}")
    await double._until(lambda: message.custom_ids()[0].split(":")[2] != str(pair_id), 30,
                        "the next pair never replaced the one voted on")
    return pair_id


async def test_picks_and_rate_votes_become_comparisons_and_change_the_leaderboard(
        double, db, stack, redis_client, keys):
    double.add_member("carol")
    async with db.acquire() as conn:
        for name in ("tiny@base", "tiny@dpo-1"):
            await ensure_model_version(conn, name, "tiny-random", "builtin")
    await serving(JobQueue(redis_client, keys), "tiny-random")
    before = await leaderboard(double)
    assert before["description"] == "No battles between model versions yet."
    assert before["fields"][0]["value"].startswith("– · – · – · –")

    seen: set = set()
    base = await grid_drawn_by(double, db, "tiny@base", "tiny@dpo-1", seen)
    await grid_drawn_by(double, db, "tiny@dpo-1", "tiny@base", seen)

    # Alice takes image 3 of the first grid: three implicit pairs
    job = int(base.custom_ids()[0].split(":")[2])
    await double.click("alice", base, f"dl:u:{job}:3")
    await double.wait_for_message("general", lambda m: "— Image #3 <@" in m.content)

    # Bob rates: the images are Alice's and of one prompt, so every pair is a real one
    rate = await double.slash("bob", "general", "rate")
    shown = await double.wait_for_message(
        "general", lambda m: m.custom_ids()[:1] and m.custom_ids()[0].startswith("dl:rate:"),
        viewer="bob")
    assert shown.payload["flags"] & 64  # only Bob sees it
    assert PROMPT in shown.content and rate.acknowledged_after < 3
    [picture] = shown.files.values()
    assert Image.open(io.BytesIO(picture)).size == (512 + 16 + 512, 512)
    voted = [await vote_for(double, db, shown, "tiny@dpo-1") for _ in range(3)]

    async with db.acquire() as conn:
        pairs = await conn.fetch("SELECT source, label, member_id, shown_slot_a, shown_slot_b "
                                 "FROM comparisons ORDER BY id")
        versions = await conn.fetch(
            """SELECT va.name AS a, vb.name AS b FROM comparisons AS c
               JOIN images AS ia ON ia.id = c.image_a_id JOIN images AS ib ON ib.id = c.image_b_id
               JOIN model_versions AS va ON va.id = ia.model_version_id
               JOIN model_versions AS vb ON vb.id = ib.model_version_id
               WHERE c.source = 'explicit'""")
    assert [p["source"] for p in pairs] == ["implicit_upscale"] * 3 + ["explicit"] * 3
    assert all((p["shown_slot_a"], p["shown_slot_b"]) == (1, 2) for p in pairs[3:])
    assert {p["member_id"] for p in pairs[3:]} == {double.user_id("bob")} and len(voted) == 3
    # two versions drew the prompt, so /rate showed pairs across them first
    assert all({v["a"], v["b"]} == {"tiny@base", "tiny@dpo-1"} for v in versions)

    after = await leaderboard(double)
    first, second = after["description"].splitlines()
    assert first.startswith("🥇 **tiny@dpo-1**") and first.endswith("3 battles")
    assert second.startswith("🥈 **tiny@base**")
    assert after["fields"][0]["value"].startswith("0% · 0% · 100% · 0%")
