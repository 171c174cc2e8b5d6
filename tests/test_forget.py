"""Forgetting a member (bot/forget.py) against real PostgreSQL, Redis and blobs: no row,
blob, Redis key or stream entry mentions them or their jobs afterwards, their queued jobs
never run, a result that comes later is deleted, and exports old and new leave them out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bot.delivery import Delivery
from bot.fair_share import Drr, FairShare
from bot.forget import forget_member
from db.guild_bans import add_ban
from db.jobs import complete_job, create_job, save_fair_share_state
from db.moderation_log import record_action
from db.moderation_rules import add_rule
from flywheel.exports import ExportImage, PairRow, battle_rows, image_uid
from flywheel.forgotten import Forgotten
from generation.blobs import LocalBlobStore
from generation.contract import JobKind
from generation.keys import WORKER_GROUP
from generation.queue import JobQueue
from tests.factories import imagine_request, result_for
from tests.test_cli import dreamloop
from tests.test_exports import MEMBERS, SALT, env, export, member_hash, seeded  # noqa: F401

FORGOTTEN = MEMBERS[4]  # made grids others voted on and gave feedback to, picked, voted
# Columns that may hold a forgotten member's id on purpose: none. (A ban, should one exist
# for them, outlives /forget-me, or forgetting would lift it: guild_bans.member_id.)
KEPT_ON_PURPOSE = {("guild_bans", "member_id")}


async def rows_mentioning(conn, member_id: int) -> list[str]:
    """Every table.column of this schema whose value is the id: bigint columns equal to it,
    text and JSON columns containing its digits."""
    columns = await conn.fetch(
        """SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
             AND c.data_type IN ('bigint', 'text', 'jsonb', 'ARRAY')""")
    found = []
    for table, column, kind in columns:
        if (table, column) in KEPT_ON_PURPOSE:
            continue
        test = "= $1" if kind == "bigint" else "::text LIKE '%' || $1::text || '%'"
        if await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE "{column}" {test}',
                               member_id if kind == "bigint" else str(member_id)):
            found.append(f"{table}.{column}")
    return found


async def redis_mentions(client, prefix: str, job_ids, member_id: int | None = None,
                         skip: frozenset[str] = frozenset()) -> list[str]:
    """Keys of this test's prefix whose name ends with one of the job ids or whose content
    names one (a stream field "job", a blob key) or holds the member's id."""
    ids = {str(i) for i in job_ids}
    needles = {f'"{i}"' for i in ids} | {f"images/{i}/" for i in ids} | (
        {str(member_id)} if member_id else set())
    found = []
    async for key in client.scan_iter(match=f"{prefix}*"):
        if key in skip:
            continue
        text = await _content(client, key)
        if key.rpartition(":")[2] in ids or any(needle in text for needle in needles):
            found.append(key)
    return found


async def _content(client, key: str) -> str:
    kind = await client.type(key)
    if kind == "stream":
        return json.dumps(await client.xrange(key))
    if kind == "hash":
        return json.dumps(await client.hgetall(key))
    if kind == "zset":
        return json.dumps(await client.zrange(key, 0, -1))
    return (await client.get(key) or "") if kind == "string" else ""


@pytest.fixture
async def services(db, redis_client, keys, tmp_path):
    return SimpleNamespace(db=db, queue=JobQueue(redis_client, keys),
                           blobs=LocalBlobStore(tmp_path / "blobs"))


async def job_ids_of(conn, member_id: int) -> list[int]:
    return [r["id"] for r in await conn.fetch("SELECT id FROM jobs WHERE member_id = $1",
                                              member_id)]


async def seed_the_rest(conn, services, member_id: int) -> dict:
    """Beyond the export seed: queued work in every state, a variation another member made
    of their image, an image prompt, fair-share turns, the moderation log, a click key."""
    queue, store = services.queue, services.blobs
    version = await conn.fetchval("SELECT id FROM model_versions LIMIT 1")
    made = {}
    for name, dispatch in (("held", True), ("unread", True), ("waiting", False)):
        made[name], _ = await create_job(conn, imagine_request(user_id=member_id),
                                         model_version_id=version, dispatch=dispatch)
        if dispatch:
            await queue.enqueue(str(made[name].id), made[name].request)
    # A worker takes the first ("held") and is drawing it; "unread" waits in the stream.
    stream = queue.keys.jobs("tiny-random", "fast")
    [made["held_entry"]] = await queue.take("gpu-1", [(stream, "fast")], count=1)
    assert made["held_entry"].job_id == str(made["held"].id)
    prompt_key = "prompts/424242.png"
    store.put(prompt_key, b"an image prompt", "image/png")
    made["with_prompt"], _ = await create_job(
        conn, imagine_request(user_id=member_id, parent_image=prompt_key, strength=0.5),
        model_version_id=version, dispatch=False)
    parent = await conn.fetchrow(
        "SELECT i.id, i.blob_key FROM images i JOIN jobs j ON j.id = i.job_id "
        "WHERE j.member_id = $1 LIMIT 1", member_id)
    variation = imagine_request(kind=JobKind.VARIATION, user_id=MEMBERS[3],
                                parent_image=parent["blob_key"], strength=0.35)
    made["variation"], _ = await create_job(conn, variation, model_version_id=version,
                                            parent_image_id=parent["id"])
    await complete_job(conn, result_for(made["variation"].id, variation))
    store.put(f"images/{made['variation'].id}/1.png", b"png", "image/png")
    await queue.redis.xadd(queue.keys.results, {"job": str(made["variation"].id),
                                                "status": "succeeded", "result": "{}"})
    share = FairShare(Drr([7]), {7: Drr([member_id, MEMBERS[0]], {member_id: 2.0})})
    await save_fair_share_state(conn, stream, share.to_json())
    await record_action(conn, 7, "ban", actor_id=MEMBERS[0], target_id=member_id)
    await record_action(conn, 7, "rule_added", actor_id=member_id)
    await add_rule(conn, 7, "forbidden", "their rule", created_by=member_id)
    await add_ban(conn, 7, MEMBERS[0], member_id, "spam")  # a ban they made as an admin
    await queue.redis.set(queue.keys.click(member_id, "dl:u:1:2"), 1)
    return made


async def test_forgetting_leaves_no_row_blob_or_redis_entry(db, services, seeded,  # noqa: F811
                                                            redis_client, keys):
    async with db.acquire() as conn:
        made = await seed_the_rest(conn, services, FORGOTTEN)
        jobs = await job_ids_of(conn, FORGOTTEN) + [made["variation"].id]
        others = await conn.fetchval("SELECT count(*) FROM jobs WHERE member_id <> $1 "
                                     "AND id <> $2", FORGOTTEN, made["variation"].id)
    assert any(services.blobs.exists(f"images/{j}/1.png") for j in jobs)

    report = await forget_member(services, FORGOTTEN, SALT)

    assert (report.jobs, report.follow_ups, report.stopped) == (len(jobs) - 1, 1, 4)
    assert report.blobs > 0 and report.feedback > 0 and report.comparisons > 0
    async with db.acquire() as conn:
        assert await rows_mentioning(conn, FORGOTTEN) == []
        assert await conn.fetchval("SELECT count(*) FROM jobs") == others  # theirs only
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1::bigint[])",
                                   jobs) == 0
        assert await conn.fetchval("SELECT member_hash FROM forgotten_members") == (
            member_hash(FORGOTTEN))
        log = await conn.fetch("SELECT actor_id, target_id, detail FROM moderation_log "
                               "ORDER BY id")
        rule = await conn.fetchrow("SELECT name, created_by FROM moderation_rules")
        ban = await conn.fetchrow("SELECT member_id, banned_by FROM guild_bans")
    assert [(r["actor_id"], r["target_id"], r["detail"]["forgotten"]) for r in log] == [
        (MEMBERS[0], None, "target"), (None, None, "actor")]
    assert tuple(rule) == ("their rule", 0)  # the server's rule stays; who added it goes
    assert tuple(ban) == (MEMBERS[0], 0)  # so does the server's ban
    for job_id in jobs:
        assert not services.blobs.exists(f"images/{job_id}/1.png")
        assert not (services.blobs.root / "images" / str(job_id)).exists()
    assert not services.blobs.exists("prompts/424242.png")

    # Only the job a worker holds is still in Redis, flagged cancelled, until it reports.
    held = made["held_entry"]
    assert await services.queue.cancelled([held.job_id]) == {held.job_id}
    stream = services.queue.keys.jobs("tiny-random", "fast")
    others = {str(j) for j in jobs} - {held.job_id}
    assert await redis_mentions(redis_client, keys.prefix, others) == []
    assert await redis_mentions(redis_client, keys.prefix, [], FORGOTTEN,
                                skip=frozenset({stream})) == []
    assert await redis_client.xlen(stream) == 1  # the held one; no unread entry of theirs
    assert await services.queue.take("gpu-2", [(stream, "fast")], count=5) == []


async def test_a_result_after_the_forget_is_deleted_not_posted(db, services, seeded,  # noqa: F811
                                                               redis_client, keys):
    async with db.acquire() as conn:
        made = await seed_the_rest(conn, services, FORGOTTEN)
    held = made["held_entry"]
    await forget_member(services, FORGOTTEN, SALT)
    # The worker finishes anyway (it had the last step drawn): blobs, result, done marker.
    services.blobs.put(f"images/{held.job_id}/1.png", b"png", "image/png")
    result = result_for(int(held.job_id), made["held"].request).to_json()
    assert await services.queue.complete("gpu-1", held, {"status": "succeeded",
                                                         "result": result})
    [(_, [(entry_id, fields)])] = await redis_client.xread({services.queue.keys.results: 0})
    delivery = Delivery(SimpleNamespace(services=services))
    await delivery._ensure_group()
    await delivery._deliver_and_ack(entry_id, fields)
    assert not services.blobs.exists(f"images/{held.job_id}/1.png")
    assert await redis_mentions(redis_client, keys.prefix, [held.job_id], FORGOTTEN) == []
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE id = $1",
                                   int(held.job_id)) == 0
    assert await redis_client.xpending(services.queue.keys.jobs("tiny-random", "fast"),
                                       WORKER_GROUP) == {"pending": 0, "min": None,
                                                         "max": None, "consumers": []}


async def test_keep_forgotten_members_out_of_exports_before_and_after(
        db, seeded, env, tmp_path, redis_url, redis_client, keys):  # noqa: F811
    async with db.acquire() as conn:
        theirs = {image_uid(r["id"]) for r in await conn.fetch(
            "SELECT i.id FROM images i JOIN jobs j ON j.id = i.job_id WHERE j.member_id = $1",
            FORGOTTEN)}
    before = {fmt: tmp_path / f"before-{fmt}" for fmt in ("pickapic", "kto", "battles")}
    for fmt, out in before.items():
        export(env, out, "--format", fmt)
    assert mentions(before, theirs), "the seed must give the forgotten member rows to lose"

    forgot = dreamloop("forget", str(FORGOTTEN), env=env | {
        "DREAMLOOP_REDIS_URL": redis_url, "DREAMLOOP_REDIS_PREFIX": keys.prefix})
    assert forgot.returncode == 0, forgot.stderr
    assert f"member {FORGOTTEN}: Deleted:" in forgot.stdout
    assert forgot.stdout.count("rewrote ") == 3
    assert not mentions(before, theirs)

    after = {fmt: tmp_path / f"after-{fmt}" for fmt in ("pickapic", "kto", "battles")}
    for fmt, out in after.items():
        export(env, out, "--format", fmt)
    assert not mentions(after, theirs)
    assert pq.read_table(after["pickapic"] / "train.parquet").num_rows > 0  # others' stay
    assert pq.read_table(before["pickapic"] / "train.parquet").num_rows > 0


def mentions(folders: dict, image_uids: set[str]) -> list[str]:
    """Files of the exports holding a row with the forgotten member's hash or images."""
    hashed, found = member_hash(FORGOTTEN), []
    for folder in folders.values():
        for path in sorted(folder.iterdir()):
            if path.suffix == ".parquet":
                rows = pq.read_table(path).to_pylist()
                uids = {row.get(c) for row in rows
                        for c in ("image_0_uid", "image_1_uid", "image_uid")}
                if any(row["user_id"] == hashed for row in rows) or uids & image_uids:
                    found.append(str(path))
            elif path.suffix == ".json" and str(hashed) in path.read_text():
                found.append(str(path))
    return found


def test_an_export_of_an_older_backup_leaves_the_forgotten_out():
    """A backup from before the forget has their rows again: the forgotten_members marks
    drop them (their hash; other members' rows about their images) and keep the rest."""
    gone = Forgotten(1, frozenset({member_hash(FORGOTTEN)}), frozenset({10, 11}),
                     frozenset({3, 7}))  # 3: a vote on their image 10
    ours = ExportImage(1, "images/1/1.png", 1, "0" * 64, "base", 4, 7.5)
    also_ours = ExportImage(2, "images/2/1.png", 1, "0" * 64, "dpo", 4, 7.5)
    theirs = ExportImage(10, "images/9/1.png", 1, "0" * 64, "dpo", 4, 7.5)

    def pair(pair_id, member, b):
        return PairRow(pair_id, "a fox", "a", "explicit", member, 1, 2, None,
                       datetime.now(UTC), None, ours, b)

    pairs = [pair(1, MEMBERS[0], also_ours), pair(2, FORGOTTEN, also_ours),
             pair(3, MEMBERS[0], theirs), pair(7, MEMBERS[1], also_ours)]
    assert [p.id for p in pairs if gone.keeps_pair(p, SALT)] == [1]
    assert [gone.keeps_battle(b) for b in battle_rows(pairs, SALT)] == [
        True, False, False, False]
    table = pa.table({"user_id": [member_hash(MEMBERS[0]), member_hash(FORGOTTEN),
                                  member_hash(MEMBERS[0])],
                      "image_uid": [image_uid(1), image_uid(1), image_uid(11)]})
    assert gone.table_mask(table).to_pylist() == [True, False, False]
