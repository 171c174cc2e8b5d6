"""Migrations, constraints, feedback and comparisons, members' data."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.connection import DatabaseUnavailable, connect, redact
from db.feedback import Comparison, FeedbackEvent, record_comparison, record_feedback
from db.jobs import complete_job, create_job, get_job
from db.members import delete_member, get_settings, update_settings
from db.migrate import Migration, migrate, shipped_migrations
from db.model_versions import ensure_model_version, list_model_versions, set_traffic_weight
from tests.factories import imagine_request, result_for

MEMBER = 1001


async def schema_connection(database_url, schema) -> asyncpg.Connection:
    return await connect(database_url, server_settings={"search_path": schema})


# -- migrations ---------------------------------------------------------------------------

async def test_migrate_applies_what_is_missing_then_nothing(database_url, db_schema):
    conn = await schema_connection(database_url, db_schema)
    try:
        assert await migrate(conn) == [m.name for m in shipped_migrations()]
        assert await migrate(conn) == []
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", db_schema)}
    finally:
        await conn.close()
    assert {"members", "guilds", "model_versions", "jobs", "images", "feedback_events",
            "comparisons", "schema_migrations"} <= tables


async def test_two_migrators_at_once_run_each_migration_exactly_once(database_url, db_schema):
    # The slow first migration holds the lock while the other migrator waits; a second run
    # of either statement would fail (no IF NOT EXISTS), so a double run cannot hide.
    migrations = [Migration("0001_slow.sql", "SELECT pg_sleep(0.3); CREATE TABLE slow (id int)"),
                  Migration("0002_next.sql", "CREATE TABLE next (id int)")]
    connections = [await schema_connection(database_url, db_schema) for _ in range(2)]
    try:
        applied = await asyncio.gather(*(migrate(c, migrations) for c in connections))
        recorded = await connections[0].fetch("SELECT name FROM schema_migrations ORDER BY name")
    finally:
        for conn in connections:
            await conn.close()
    assert sorted(applied, key=len) == [[], ["0001_slow.sql", "0002_next.sql"]]
    assert [r["name"] for r in recorded] == ["0001_slow.sql", "0002_next.sql"]


async def test_a_failing_migration_leaves_nothing_half_applied(database_url, db_schema):
    broken = [Migration("0001_ok.sql", "CREATE TABLE ok (id int)"),
              Migration("0002_broken.sql", "CREATE TABLE half (id int); SELECT 1/0")]
    conn = await schema_connection(database_url, db_schema)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await migrate(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await migrate(conn, broken[:1]) == []  # the good one stayed applied
    finally:
        await conn.close()


# -- constraints name the rule that was broken ---------------------------------------------

@pytest.mark.parametrize(("sql", "constraint"), [
    ("UPDATE jobs SET status = 'lost'",
     "jobs_status_queued_running_succeeded_failed_cancelled_dead"),
    ("UPDATE jobs SET kind = 'inpaint'", "jobs_kind_is_known"),
    ("UPDATE jobs SET lane = 'slow'", "jobs_lane_is_known"),
    ("UPDATE jobs SET gpu_ms = -1", "jobs_gpu_ms_at_least_0"),
    ("UPDATE jobs SET finished_at = NULL", "jobs_finished_when_status_is_final"),
    ("UPDATE images SET slot = 5", "images_slot_1_to_4"),
    ("UPDATE images SET sha256 = 'not-a-hash'", "images_sha256_is_64_hex_digits"),
    ("UPDATE model_versions SET traffic_weight = -0.5", "model_versions_traffic_weight_at_least_0"),
    ("INSERT INTO feedback_events (member_id, kind, shown_at, image_id) "
     "SELECT 1001, 'like', now(), id FROM images LIMIT 1", "feedback_events_kind_is_known"),
    ("INSERT INTO feedback_events (member_id, kind, shown_at, image_id, shown_slot) "
     "SELECT 1001, 'upscale_pick', now(), id, 7 FROM images LIMIT 1",
     "feedback_events_shown_slot_1_to_4"),
    ("INSERT INTO feedback_events (member_id, kind, shown_at) VALUES (1001, 'thumbs_up', now())",
     "feedback_events_image_kinds_name_an_image"),
    ("INSERT INTO feedback_events (member_id, kind, shown_at, decided_at, job_id) "
     "SELECT 1001, 'reroll', now(), now() - interval '1 hour', id FROM jobs LIMIT 1",
     "feedback_events_decided_after_shown"),
])
async def test_constraints_reject_bad_values_naming_the_rule(db, sql, constraint):
    await finished_job(db)
    async with db.acquire() as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError) as caught:
            await conn.execute(sql)
    assert caught.value.constraint_name == constraint
    assert constraint in str(caught.value)


async def test_a_comparison_label_outside_the_four_is_rejected(db):
    a, b = await two_images(db)
    pair = Comparison(a, b, "a fox", label="left", source="explicit", member_id=MEMBER,
                      shown_slot_a=1, shown_slot_b=2)
    async with db.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError,
                           match="comparisons_label_is_a_b_tie_or_both_bad"):
            await record_comparison(conn, pair)


# -- feedback and comparisons ---------------------------------------------------------------

async def finished_job(db):
    async with db.acquire() as conn:
        version = await ensure_model_version(conn, "tiny-random", "tiny-random", "builtin")
        job, _ = await create_job(conn, imagine_request(user_id=MEMBER),
                                  model_version_id=version.id)
        await complete_job(conn, result_for(job.id, job.request))
    return job


async def two_images(db) -> tuple[int, int]:
    job = await finished_job(db)
    async with db.acquire() as conn:
        rows = await conn.fetch("SELECT id FROM images WHERE job_id = $1 ORDER BY slot", job.id)
    return rows[0]["id"], rows[1]["id"]


async def test_a_retried_click_is_recorded_once(db):
    a, _ = await two_images(db)
    shown = datetime.now(UTC) - timedelta(seconds=8)
    event = FeedbackEvent(member_id=2002, kind="upscale_pick", shown_at=shown, image_id=a,
                          shown_slot=1, interaction_id=9001)
    async with db.acquire() as conn:
        first = await record_feedback(conn, event)
        again = await record_feedback(conn, event)
        row = await conn.fetchrow("SELECT count(*), min(decided_at - shown_at) AS waited "
                                  "FROM feedback_events")
    assert first[1] and not again[1] and first[0] == again[0]
    assert row["count"] == 1 and row["waited"] >= timedelta(seconds=8)


async def test_feedback_events_are_append_only(db):
    a, _ = await two_images(db)
    event = FeedbackEvent(member_id=MEMBER, kind="thumbs_up", shown_at=datetime.now(UTC),
                          image_id=a)
    async with db.acquire() as conn:
        await record_feedback(conn, event)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
            await conn.execute("UPDATE feedback_events SET kind = 'thumbs_down'")


async def test_one_vote_per_member_per_pair_whichever_side(db):
    a, b = await two_images(db)
    vote = Comparison(a, b, "a fox", label="a", source="explicit", member_id=MEMBER,
                      shown_slot_a=1, shown_slot_b=2, decision_ms=1800)
    swapped = Comparison(b, a, "a fox", label="tie", source="explicit", member_id=MEMBER,
                         shown_slot_a=1, shown_slot_b=2)
    implied = Comparison(a, b, "a fox", label="a", source="implicit_upscale", member_id=MEMBER,
                         shown_slot_a=1, shown_slot_b=2)
    async with db.acquire() as conn:
        assert await record_comparison(conn, vote) is not None
        assert await record_comparison(conn, swapped) is None
        assert await record_comparison(conn, implied) is not None  # picks are not votes
        other_member = Comparison(**{**vote.__dict__, "member_id": MEMBER + 1})
        await conn.execute("INSERT INTO members (id) VALUES ($1)", MEMBER + 1)
        assert await record_comparison(conn, other_member) is not None


# -- members, guilds, model versions -------------------------------------------------------

async def test_settings_merge_and_remove_keys(db):
    async with db.acquire() as conn:
        assert await get_settings(conn, "member", 5) == {}
        await update_settings(conn, "member", 5, {"model": "sdxl", "aspect": "3:2"})
        merged = await update_settings(conn, "member", 5, {"aspect": None, "lane": "relax"})
        assert merged == {"model": "sdxl", "lane": "relax"}
        assert await get_settings(conn, "member", 5) == merged
        await update_settings(conn, "guild", 7, {"channels": [1, 2]})
        assert await get_settings(conn, "guild", 7) == {"channels": [1, 2]}


async def test_deleting_a_member_deletes_their_jobs_images_and_feedback(db):
    job = await finished_job(db)
    async with db.acquire() as conn:
        image = await conn.fetchval("SELECT id FROM images LIMIT 1")
        await record_feedback(conn, FeedbackEvent(member_id=MEMBER, kind="favourite",
                                                  shown_at=datetime.now(UTC), image_id=image))
        assert await delete_member(conn, MEMBER)
        assert await get_job(conn, job.id) is None
        counts = await conn.fetchrow("SELECT (SELECT count(*) FROM images) AS images, "
                                     "(SELECT count(*) FROM feedback_events) AS events")
    assert tuple(counts) == (0, 0)


async def test_model_versions_are_created_once_and_weighted(db):
    async with db.acquire() as conn:
        first = await ensure_model_version(conn, "sdxl@dpo-1", "sdxl", "me/sdxl-dpo-1")
        again = await ensure_model_version(conn, "sdxl@dpo-1", "sdxl", "me/sdxl-dpo-1")
        assert first == again and first.traffic_weight == 0
        assert await set_traffic_weight(conn, "sdxl@dpo-1", 0.25)
        assert not await set_traffic_weight(conn, "nope", 1.0)
        assert [v.traffic_weight for v in await list_model_versions(conn)] == [0.25]


# -- connecting -----------------------------------------------------------------------------

async def test_an_unreachable_database_is_one_sentence_without_the_password():
    with pytest.raises(DatabaseUnavailable) as caught:
        await connect("postgresql://me:hunter2@127.0.0.1:1/nope")
    assert "cannot connect to the database at postgresql://me:***@127.0.0.1:1/nope" in str(
        caught.value)
    assert "hunter2" not in str(caught.value)
    assert redact("postgresql://127.0.0.1/x") == "postgresql://127.0.0.1/x"


async def test_a_url_that_is_not_postgresql_is_one_sentence():
    with pytest.raises(DatabaseUnavailable, match="cannot connect to the database at mysql://"):
        await connect("mysql://me@127.0.0.1/x")
