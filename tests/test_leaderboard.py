"""The leaderboard from the database: `dreamloop leaderboard` rates model versions from
votes (and, apart, from picks), and reports position bias and agreement."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from db.connection import with_schema
from db.feedback import (
    Comparison,
    FeedbackEvent,
    LeaderboardRows,
    picked_slots,
    record_comparison,
    record_feedback,
    version_battles,
)
from db.images import job_images
from db.jobs import complete_job, create_job
from db.model_versions import ensure_model_version
from flywheel.leaderboard import build_leaderboard
from tests.factories import imagine_request, result_for
from tests.test_cli import dreamloop


async def grid_of(conn, version: str, seed: int) -> list:
    """A finished four-image job of one model version; its images."""
    made = await ensure_model_version(conn, version, "tiny-random", "builtin")
    request = imagine_request(seed=seed, prompt="a lighthouse")
    job, _ = await create_job(conn, request, model_version_id=made.id)
    await complete_job(conn, result_for(job.id, request))
    return await job_images(conn, job.id)


async def vote(conn, a, b, label: str, member: int) -> None:
    await record_comparison(conn, Comparison(a.id, b.id, "a lighthouse", label, "explicit",
                                             member, 1, 2))


async def seed_votes(db) -> None:
    """strong beats weak 3 times in 4 (ties now and then); weak beats itself, never counted."""
    rng = random.Random(4)
    async with db.acquire() as conn:
        await conn.execute("INSERT INTO members (id) SELECT generate_series(1, 300)")
        for member in range(1, 301):
            strong, weak = await grid_of(conn, "strong", member), await grid_of(conn, "weak",
                                                                                 member)
            roll = rng.random()
            label = "a" if roll < 0.7 else "b" if roll < 0.93 else "tie"
            await vote(conn, strong[0], weak[0], label, member)
            await vote(conn, weak[1], weak[2], "a", member)  # one version: no battle


async def test_the_leaderboard_command_rates_versions_from_votes(db, database_url, db_schema,
                                                                  cli_env):
    await seed_votes(db)
    env = cli_env | {"DREAMLOOP_DATABASE_URL": with_schema(database_url, db_schema)}
    result = dreamloop("leaderboard", "--rounds", "30", "--json", env=env)
    assert result.returncode == 0, result.stderr
    board = json.loads(result.stdout.strip().splitlines()[-1])
    strong, weak = board["standings"]
    assert (strong["version"], weak["version"]) == ("strong", "weak")
    assert strong["battles"] == weak["battles"] == 300
    assert strong["wins"] == weak["losses"] and strong["ties"] == weak["ties"] > 0
    assert strong["low"] < strong["rating"] < strong["high"]
    assert strong["rating"] - weak["rating"] > 100  # 0.7 : 0.23 is about 190 points
    assert "dreamloop leaderboard (explicit votes)" in result.stdout


async def test_picks_are_rated_apart_and_checked_for_position_bias(db):
    async with db.acquire() as conn:
        await conn.execute("INSERT INTO members (id) VALUES (1)")
        images = await grid_of(conn, "weak", 1)
        for slot in [1] * 60 + [2, 3, 4] * 10:  # a planted preference for the first slot
            await record_feedback(conn, FeedbackEvent(
                member_id=1, kind="upscale_pick", shown_at=datetime.now(UTC),
                job_id=images[0].job_id, image_id=images[slot - 1].id, shown_slot=slot))
        slots = await picked_slots(conn)
        battles = await version_battles(conn, ["implicit_upscale"])
    board = build_leaderboard("implicit", LeaderboardRows(battles, slots, [], []), rounds=10)
    assert sorted(slots) == sorted([1] * 60 + [2, 3, 4] * 10)
    assert board.standings == [] and board.position_biased  # one version: no battles
    assert board.slot_win_rates[0] > 0.6


async def test_slash_leaderboard_shows_the_ratings_at_a_glance(double, db, stack):
    await seed_votes(db)
    await double.slash("bob", "general", "leaderboard")
    board = await double.wait_for_message("general", lambda m: m.embeds, timeout=60)
    [embed] = board.embeds
    first, second = embed["description"].splitlines()
    assert first.startswith("🥇 **strong** — ") and second.startswith("🥈 **weak** — ")
    assert "300 battles" in first and embed["title"] == "Leaderboard — from votes"
