"""How results and statuses are posted, end to end: the real bot and worker processes
against the Discord double, real PostgreSQL and Redis. Long prompts fit Discord's 2,000
characters, follow-up work is shown like /imagine, files fit the upload limit, progress
edits do not wait on each other, and Discord's 5xx and 429 answers are waited out."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from db.jobs import get_job
from generation.blobs import image_key
from generation.keys import DELIVERY_GROUP
from tests.bot_stack import is_grid

pytestmark = pytest.mark.timeout(400)
MESSAGES = "/channels/{channel}/messages"


def grids(double, channel: str = "general") -> list:
    return [m for m in double.channel_messages(channel) if is_grid(m)]


async def job_of(db, message):
    async with db.acquire() as conn:
        return await get_job(conn, int(message.custom_ids()[0].split(":")[2]))


async def test_a_long_prompt_is_drawn_and_every_echo_fits(double, db, stack):
    prompt = "_" * 1000 + " a fox"  # markdown escaping doubles it past 2,000
    await double.slash("alice", "general", "imagine", prompt=prompt, model="tiny-random")
    status = await double.wait_for_message("general", lambda m: m.content.startswith("**\\_"))
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job = await job_of(db, grid)
    await double.click("bob", grid, f"dl:u:{job.id}:1")
    taken = await double.wait_for_message("general", lambda m: "— Image #1 <@" in m.content)
    for message in (status, grid, taken):
        body = message.content.split("**")[1]
        assert body.startswith("\\_" * 100) and body.endswith("…")
        assert len(message.content.encode("utf-16-le")) // 2 <= 2000
    assert job.status == "succeeded" and job.result_message_id == grid.id
    assert not any("ask an admin" in m.content
                   for m in double.channel_messages("general", viewer="alice"))


async def test_follow_up_work_shows_its_status_and_says_what_it_is(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a blue heron", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job = await job_of(db, grid)
    bob = double.user_id("bob")
    await double.click("bob", grid, f"dl:v:{job.id}:2")
    status = await double.wait_for_message(  # public: everyone sees the work under way
        "general", lambda m: "Variations (Strong) of image #2" in m.content and "queued" in
        m.content)
    assert status.content.startswith(f"**a blue heron** — Variations (Strong) of image #2 by "
                                     f"<@{bob}> — queued (#")
    varied = await double.wait_for_message(
        "general", lambda m: is_grid(m) and m.id != grid.id, timeout=120)
    assert varied.content == f"**a blue heron** — Variations (Strong) of image #2 by <@{bob}>"
    await double._until(lambda: status.deleted, 30, "the finished status was left behind")

    await double.click("bob", grid, f"dl:r:{job.id}")
    rerolled = await double.wait_for_message(
        "general", lambda m: is_grid(m) and "Drawn again by" in m.content, timeout=120)
    assert rerolled.content == f"**a blue heron** — Drawn again by <@{bob}>"

    await double.click("alice", grid, f"dl:u:{job.id}:3")
    taken = await double.wait_for_message("general", lambda m: "— Image #3 <@" in m.content)
    await double.click("alice", taken, f"dl:up:{job.id}:3")
    upscaled = await double.wait_for_message(
        "general", lambda m: "Upscaled ×2" in m.content and m.custom_ids(), timeout=120)
    assert upscaled.content == (f"**a blue heron** — Upscaled ×2 of image #3 by "
                                f"<@{double.user_id('alice')}>")
    # Every status message goes with its result: the bot deletes it just after posting the
    # result (and recording its id), so the upscale's own status may still be there when its
    # result first shows.
    await double._until(lambda: not [m for m in double.channel_messages("general")
                                     if "queued (#" in m.content or "%)" in m.content],
                        30, "a status message stayed after its result")


async def test_files_over_the_upload_limit_are_posted_as_a_webp_that_fits(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a coral reef", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job = await job_of(db, grid)
    png = stack.blobs.get(image_key(job.id, 2))
    double.upload_limit = len(png) - 1  # what the next interactions say, and enforce
    await double.click("bob", grid, f"dl:u:{job.id}:2")
    taken = await double.wait_for_message("general", lambda m: "— Image #2 <@" in m.content)
    await double.click("bob", taken, f"dl:up:{job.id}:2")
    upscaled = await double.wait_for_message(
        "general", lambda m: "Upscaled ×2" in m.content and m.custom_ids(), timeout=120)
    for message in (taken, upscaled):
        [(name, data)] = message.files.items()
        assert name.endswith(".webp") and data[8:12] == b"WEBP"
        assert len(data) <= double.upload_limit


@pytest.mark.timeout(600)
async def test_a_stuck_progress_edit_holds_up_no_other_job(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a slow owl --steps 150",
                       model="tiny-random")
    owl = await double.wait_for_message("general", lambda m: "a slow owl" in m.content)
    # After its first edit has come back: until then discord.py sends no second request
    # on that route in the channel (it does not know the rate-limit bucket yet).
    await double._until(lambda: "%)" in owl.content, 120, "the owl's progress never showed")
    channel = double.channel_id("general")
    release = double.hold("PATCH", f"/channels/{channel}/messages/{owl.id}")
    try:
        await double.slash("bob", "general", "imagine", prompt="a slow hen --steps 150",
                           model="tiny-random")
        hen = await double.wait_for_message("general", lambda m: "a slow hen" in m.content)
        # The hen is drawn once the owl's 150 steps are done (one worker): minutes on a
        # loaded CPU. A stuck edit holding it up would hold it for ever.
        await double._until(lambda: "%)" in hen.content, 300,
                            "the hen's progress waited on the owl's stuck edit")
    finally:
        release.set()


async def test_a_run_of_503s_and_429s_is_waited_out_and_posted_once(
        double, db, stack, redis_client, keys):
    for prompt, status, count in (("a wet dog", 503, 2), ("a busy bee", 429, 7)):
        before = len(grids(double))
        # The status message goes through, then the grid's post is refused count times:
        # discord.py itself waits out 5 of the 429s, not a 503; the rest are ours.
        fault = double.fail_next("POST", MESSAGES, count, status, retry_after=0.2, skip=1)
        await double.slash("alice", "general", "imagine", prompt=prompt, model="tiny-random")
        await double._until(lambda b=before: len(grids(double)) > b, 240, "no grid came")
        [grid] = [m for m in grids(double) if prompt in m.content]
        for _ in range(100):  # the message id is recorded just after the post
            if (await job_of(db, grid)).result_message_id == grid.id:
                break
            await asyncio.sleep(0.1)
        assert fault.count == 0 and (await job_of(db, grid)).result_message_id == grid.id
    assert await redis_client.xpending(keys.results, DELIVERY_GROUP) == {
        "pending": 0, "min": None, "max": None, "consumers": []}


async def test_a_post_discord_keeps_refusing_fails_once_and_its_member_is_told(
        double, db, stack, redis_client, keys):
    double.fail_next("POST", MESSAGES, 5, 503, skip=1)  # the grid's every try, not the status
    await double.slash("bob", "general", "imagine", prompt="a lost kite", model="tiny-random")
    notice = await double.wait_for_message(
        "general", lambda m: "refused its post" in m.content, timeout=240)
    assert notice.content.startswith(f"**a lost kite** — <@{double.user_id('bob')}> — job ")
    assert "Discord refused its post 5 times (503 Service Unavailable)" in notice.content
    async with db.acquire() as conn:
        status, error = await conn.fetchrow("SELECT status, error FROM jobs")
    assert status == "failed" and error.startswith("Discord refused its post 5 time(s): 503")
    assert not grids(double)
    assert (await redis_client.xpending(keys.results, DELIVERY_GROUP))["pending"] == 0


async def test_a_grid_that_fits_no_upload_limit_fails_once_and_its_member_is_told(
        double, db, stack, redis_client, keys):
    # A tiny WebP fits even 100 bytes (test_bot_show.py): only a few bytes fit nothing.
    double.upload_limit = 10  # what the /imagine interaction says, as Discord would
    await double.slash("bob", "general", "imagine", prompt="a tiny stamp", model="tiny-random")
    notice = await double.wait_for_message(
        "general", lambda m: "upload limit" in m.content, timeout=240)
    assert notice.content.startswith(f"**a tiny stamp** — <@{double.user_id('bob')}> — ")
    assert notice.content.endswith("cannot be made to fit this server's upload limit (10 "
                                   "bytes), not even as a smaller WebP.")
    async with db.acquire() as conn:
        status, error = await conn.fetchrow("SELECT status, error FROM jobs")
    assert status == "failed" and "upload limit (10 bytes)" in error
    assert not grids(double)
    # Acknowledged, so no bot tries it again at its next claim or start.
    assert (await redis_client.xpending(keys.results, DELIVERY_GROUP))["pending"] == 0
    assert len([m for m in double.channel_messages("general")
                if "upload limit" in m.content]) == 1


async def test_a_workers_error_is_echoed_escaped_and_capped(double, db, stack, redis_client,
                                                            keys):
    for worker in stack.workers:
        worker.stop()
    await double.slash("alice", "general", "imagine", prompt="a red kite", model="tiny-random")
    await double.wait_for_message("general", lambda m: "a red kite" in m.content)
    async with db.acquire() as conn:
        job_id = await conn.fetchval("SELECT id FROM jobs")
    # What a worker publishes when a job fails: its own text, unchecked
    await redis_client.xadd(keys.results, {"job": str(job_id), "status": "failed",
                                           "error": "**CUDA** @everyone " + "x" * 5000})
    notice = await double.wait_for_message("general", lambda m: "could not be drawn" in m.content)
    assert "could not be drawn: \\*\\*CUDA\\*\\* @everyone xxx" in notice.content
    assert notice.content.endswith("…") and len(notice.content) < 1000
    assert notice.pinged == {"everyone": False, "users": set(), "roles": set()}


# -- the double's fault modes, as discord.py meets them -----------------------------------

async def test_the_double_answers_429_and_503_as_discord_does(double):
    path = double.api_base + MESSAGES.format(channel=double.channel_id("general"))
    double.fail_next("POST", MESSAGES, 1, 429, retry_after=1.5)
    double.fail_next("POST", MESSAGES, 1, 503)
    headers = {"Authorization": f"Bot {double.token}"}
    answers = []
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.post(path, json={"content": "hi"}, headers=headers) as response:
                answers.append((response.status, await response.json(), response.headers))
    (limited, body, limit_headers), (unavailable, down, _), (ok, _, _) = answers
    assert (limited, body) == (429, {"message": "You are being rate limited.",
                                     "retry_after": 1.5, "global": False, "code": 0})
    assert (limit_headers["Retry-After"], limit_headers["X-RateLimit-Remaining"],
            limit_headers["Via"]) == ("2", "0", "1.1 google")
    assert (unavailable, down) == (503, {"message": "503: Service Unavailable", "code": 0})
    assert ok == 200 and [m.content for m in double.channel_messages("general")] == ["hi"]


async def test_the_double_refuses_an_edit_past_2000_characters(double):
    channel = double.channel_id("general")
    headers = {"Authorization": f"Bot {double.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(double.api_base + MESSAGES.format(channel=channel),
                                json={"content": "hi"}, headers=headers) as response:
            message_id = (await response.json())["id"]
        async with session.patch(f"{double.api_base}/channels/{channel}/messages/{message_id}",
                                 json={"content": "x" * 2001}, headers=headers) as response:
            status, body = response.status, await response.json()
    assert (status, body["code"]) == (400, 50035)
    assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert double.channel_messages("general")[0].content == "hi"


async def test_a_held_request_waits_until_released(double):
    path = double.api_base + MESSAGES.format(channel=double.channel_id("general"))
    release = double.hold("POST", MESSAGES)
    headers = {"Authorization": f"Bot {double.token}"}
    async with aiohttp.ClientSession() as session:
        post = asyncio.ensure_future(session.post(path, json={"content": "hi"}, headers=headers))
        await asyncio.sleep(0.3)
        assert not post.done() and double.channel_messages("general") == []
        release.set()
        async with await post as response:
            assert response.status == 200
