"""/settings end to end: a member's defaults shape their jobs; a server's rules need Manage
Server, checked by the bot itself."""

from __future__ import annotations

import pytest

from generation.queue import JobQueue
from tests.bot_stack import reply_to, serving, told

pytestmark = pytest.mark.timeout(300)


async def job_for(db, interaction):
    async with db.acquire() as conn:
        return await conn.fetchrow("SELECT lane, request FROM jobs WHERE interaction_id = $1",
                                   interaction.id)


async def test_server_settings_need_manage_server(double, db, stack, redis_client, keys):
    await serving(JobQueue(redis_client, keys), "tiny-random")  # a default must be served
    refused = await double.slash("bob", "general", "settings server", allow_channel="art")
    assert "Only members with the Manage Server permission" in await reply_to(double, refused)
    allowed = await double.slash("alice", "general", "settings server", allow_channel="art",
                                 default_model="tiny-random")
    assert await reply_to(double, allowed) == (
        f"This server's settings: default model: tiny-random; channels: "
        f"<#{double.channel_id('art')}>")

    elsewhere = await double.slash("bob", "general", "imagine", prompt="a kite")
    await told(double, "bob", f"On this server /imagine works in <#{double.channel_id('art')}>")
    assert await job_for(db, elsewhere) is None
    here = await double.slash("bob", "art", "imagine", prompt="a kite")
    await double.wait_for_message("art", lambda m: "a kite" in m.content)
    assert (await job_for(db, here))["request"]["model"] == "tiny-random"  # the server's


async def test_a_members_defaults_shape_their_jobs(double, db, stack):
    saved = await double.slash("bob", "general", "settings me", aspect="2:1", lane="relax")
    assert await reply_to(double, saved) == "Your defaults: aspect: 2:1; lane: relax"
    kite = await double.slash("bob", "general", "imagine", prompt="a kite", model="tiny-random")
    await double.wait_for_message("general", lambda m: "a kite" in m.content)
    job = await job_for(db, kite)
    assert (job["lane"], job["request"]["width"], job["request"]["height"]) == ("relax", 128, 64)
    square = await double.slash("bob", "general", "imagine", prompt="a box --ar 1:1",
                                model="tiny-random")
    await double.wait_for_message("general", lambda m: "a box" in m.content)
    assert (await job_for(db, square))["request"]["width"] == 64  # the prompt wins

    reset = await double.slash("bob", "general", "settings me", reset=True)
    assert await reply_to(double, reset) == "Your defaults: none set (the defaults apply)."


@pytest.mark.parametrize(("options", "message"), [
    ({"aspect": "9:1"}, "--ar value '9:1' is out of range: use --ar W:H"),
    ({"model": "nope"}, "nope"),
])
async def test_bad_defaults_are_refused_and_nothing_is_saved(double, db, stack, options,
                                                            message):
    bad = await double.slash("bob", "general", "settings me", **options)
    assert message in await reply_to(double, bad)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT settings FROM members WHERE id = $1",
                                   double.user_id("bob")) is None


@pytest.mark.parametrize(("member", "command", "option"), [
    ("bob", "settings me", "model"), ("alice", "settings server", "default_model")])
async def test_a_model_no_worker_serves_is_refused_naming_the_served_ones(
        double, db, stack, redis_client, keys, member, command, option):
    await serving(JobQueue(redis_client, keys), "tiny-random")
    refused = await double.slash(member, "general", command, **{option: "sdxl"})
    assert await reply_to(double, refused) == (
        "Not saved: no worker serves the model 'sdxl' now, so /imagine would wait for one. "
        "Served now: tiny-random.")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM members WHERE settings <> '{}'"
                                   ) == 0
        assert await conn.fetchval("SELECT count(*) FROM guilds WHERE settings <> '{}'"
                                   ) == 0
    served = await double.slash(member, "general", command, **{option: "tiny-random"})
    assert "tiny-random" in await reply_to(double, served)


async def test_info_tells_a_waiting_job_that_no_worker_serves_its_model(double, db, stack,
                                                                       redis_client, keys):
    await serving(JobQueue(redis_client, keys), "tiny-random")
    await double.slash("bob", "general", "imagine", prompt="a lighthouse", model="sdxl")
    await double.wait_for_message("general", lambda m: "a lighthouse" in m.content)
    async with db.acquire() as conn:
        job_id = await conn.fetchval("SELECT id FROM jobs")
    info = await double.slash("bob", "general", "info")
    assert (f"Job {job_id} (imagine, fast): queued, #1 in line; no worker serves sdxl now: "
            "it starts when one does — a lighthouse") in await reply_to(double, info)
