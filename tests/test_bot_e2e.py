"""The dreamloop bot end to end: the real bot process against the Discord double, a real
worker process on the tiny model, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import io
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from PIL import Image

from db.images import get_image
from db.jobs import get_job
from generation.blobs import grid_key, image_key
from tests.bot_stack import BotProcess, is_grid, reply_to, told
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(300)


async def test_imagine_to_grid_to_picks_and_variations(double, db, stack):
    bot, blobs = stack.bot, stack.blobs
    interaction = await double.slash("alice", "general", "imagine",
                                     prompt="a red fox in snow --seed 7", model="tiny-random")
    await double.wait_for_callback(interaction)
    assert interaction.acknowledged_after < 3
    status = await double.wait_for_message("general", lambda m: "queued (#" in m.content)
    assert status.content.startswith("**a red fox in snow** — <@")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    async with db.acquire() as conn:
        job = await get_job(conn, int(grid.custom_ids()[0].split(":")[2]))
        assert (job.status, job.request.seed, job.member_id) == (
            "succeeded", 7, double.user_id("alice"))
        assert await conn.fetchval("SELECT count(*) FROM images WHERE job_id = $1", job.id) == 4
    assert grid.custom_ids() == [f"dl:u:{job.id}:{s}" for s in range(1, 5)] + [
        f"dl:r:{job.id}"] + [f"dl:v:{job.id}:{s}" for s in range(1, 5)]
    [grid_bytes] = grid.files.values()
    assert grid_bytes == blobs.get(grid_key(job.id))  # the grid shows the job's images
    assert grid.pinged == {"everyone": False, "users": set(), "roles": set()}

    assert status.payload["edited_timestamp"] and "%)" in status.content  # progress shown
    await double._until(lambda: status.deleted, 30, "the status stayed above the grid")

    # U2: image 2 full size, and a feedback event with the slot it was shown in
    await double.click("bob", grid, f"dl:u:{job.id}:2")
    taken = await double.wait_for_message("general", lambda m: "— Image #2 <@" in m.content)
    assert taken.content == f"**a red fox in snow** — Image #2 <@{double.user_id('bob')}>"
    assert list(taken.files.values()) == [blobs.get(image_key(job.id, 2))]
    assert taken.custom_ids() == [f"dl:{a}:{job.id}:2" for a in ("vs", "vg", "up", "tu", "td",
                                                                   "fv")]
    async with db.acquire() as conn:
        event = await conn.fetchrow("SELECT member_id, kind, shown_slot, image_id "
                                    "FROM feedback_events")
        image_2 = await get_image(conn, job.id, 2)
    assert tuple(event) == (double.user_id("bob"), "upscale_pick", 2, image_2.id)
    async with db.acquire() as conn:  # and the pairs it implies: image 2 beat the other three
        pairs = await conn.fetch("SELECT image_a_id, label, source, shown_slot_a, shown_slot_b, "
                                 "prompt FROM comparisons ORDER BY shown_slot_b")
    assert [(p["image_a_id"], p["label"], p["source"], p["shown_slot_a"], p["shown_slot_b"])
            for p in pairs] == [(image_2.id, "a", "implicit_upscale", 2, b) for b in (1, 3, 4)]
    assert {p["prompt"] for p in pairs} == {"a red fox in snow"}

    # 👍 is recorded; Upscale 2× delivers one image twice the size
    await double.click("alice", taken, f"dl:tu:{job.id}:2")
    await double.click("alice", taken, f"dl:up:{job.id}:2")
    upscaled = await double.wait_for_message(
        "general", lambda m: "Upscaled ×2 of image #2 by" in m.content and m.custom_ids(),
        timeout=120)
    [big] = upscaled.files.values()
    assert not any(c.startswith("dl:up:") for c in upscaled.custom_ids())  # not 4× by 2×
    assert Image.open(io.BytesIO(big)).size == (128, 128)
    async with db.acquire() as conn:
        kinds = [r["kind"] for r in await conn.fetch(
            "SELECT kind FROM feedback_events ORDER BY id")]
    assert kinds[0] == "upscale_pick"  # the two clicks after it are handled concurrently
    assert sorted(kinds[1:]) == ["thumbs_up", "upscale_2x"]

    # 🔄: the same prompt with other seeds
    await double.click("bob", grid, f"dl:r:{job.id}")
    await double._until(lambda: len([m for m in double.channel_messages("general")
                                     if is_grid(m)]) >= 2, 120, "no reroll grid")
    async with db.acquire() as conn:
        reroll = await conn.fetchrow("SELECT request FROM jobs WHERE kind = 'reroll'")
    assert reroll["request"]["prompt"] == "a red fox in snow"
    assert reroll["request"]["seed"] != 7

    # V3: a variation job whose parent is image 3, delivered as its own grid
    grids_before = {m.id for m in double.channel_messages("general") if is_grid(m)}
    await double.click("bob", grid, f"dl:v:{job.id}:3")
    variation_grid = await double.wait_for_message(
        "general", lambda m: is_grid(m) and m.id not in grids_before, timeout=120)
    async with db.acquire() as conn:
        variation = await get_job(conn, int(variation_grid.custom_ids()[0].split(":")[2]))
        image_3 = await get_image(conn, job.id, 3)
        parent = await conn.fetchval("SELECT parent_image_id FROM jobs WHERE id = $1",
                                     variation.id)
    assert (variation.kind, parent, variation.member_id) == (
        "variation", image_3.id, double.user_id("bob"))

    # after a restart, the buttons of grids posted before it still work
    bot.kill()
    bot.start()
    await double._until(lambda: double.identify_count >= 2, 60, "the bot did not reconnect")
    await double.click("alice", grid, f"dl:u:{job.id}:1")
    await double.wait_for_message("general", lambda m: "— Image #1 <@" in m.content)


# One of each kind of mistake the parser and the request builder name (tests/test_prompt.py
# holds every case); the first ones are answered before the acknowledgement, the others after.
BAD_PROMPTS = [
    ("a fox --ar 10:1", "--ar value '10:1' is out of range"),
    ("a fox --seed forty", "--seed value 'forty' is not valid"),
    ("a fox --chaos", "--chaos needs a value"),
    ("a fox --seed 1 --seed 2", "--seed is given twice"),
    ("a fox --sed 4", "Unknown flag --sed (did you mean --seed?)"),
    ("a fox --tile seamless", "--tile takes no value, but 'seamless' follows it"),
    ("--ar 16:9", "Write what to draw before any flags"),
    ("https://a.png https://b.png a fox", "Give one image link"),
    ("a fox --steps 10 --quality 2", "--steps and --quality both set the number of steps"),
    ("a fox --model nope", "nope"),
    ("a fox --iw 2", "--iw sets how much an image prompt counts"),
]


async def test_every_kind_of_bad_prompt_gets_an_ephemeral_error_and_creates_nothing(
        double, db, stack):
    for prompt, message in BAD_PROMPTS:
        model = {} if "--model" in prompt else {"model": "tiny-random"}
        await double.slash("alice", "general", "imagine", prompt=prompt, **model)
        await told(double, "alice", message)
    assert double.channel_messages("general", viewer="bob") == []  # all ephemeral
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 0


async def test_mentions_in_a_prompt_ping_nobody(double, db, stack):
    prompt = "@everyone @here <@&1> **bold** a cat"
    await double.slash("bob", "general", "imagine", prompt=prompt, model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    status = next(m for m in double.messages.values()  # deleted once the grid is posted
                  if "a cat" in m.content and not is_grid(m))
    for message in (status, grid):
        assert message.pinged == {"everyone": False, "users": set(), "roles": set()}
    assert "\\*\\*bold\\*\\*" in grid.content  # markdown escaped, shown as typed
    await asyncio.sleep(0)


async def test_info_cancel_and_show(double, db, stack):
    slow = await double.slash("alice", "general", "imagine", prompt="a slow owl --steps 150",
                              model="tiny-random")
    await double.wait_for_message("general", lambda m: "a slow owl" in m.content)
    async with db.acquire() as conn:
        job_id = await conn.fetchval("SELECT id FROM jobs WHERE interaction_id = $1", slow.id)
    info = await double.slash("alice", "general", "info")
    assert f"Job {job_id} (imagine, fast)" in await reply_to(double, info)
    refused = await double.slash("bob", "general", "cancel", job=job_id)
    assert f"Job {job_id} is not one of your" in await reply_to(double, refused)
    cancel = await double.slash("alice", "general", "cancel", job=job_id)
    assert await reply_to(double, cancel) == f"Job {job_id} is cancelled."
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == "cancelled"
    quick = await double.slash("alice", "general", "imagine", prompt="a quick hare",
                               model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    async with db.acquire() as conn:
        quick_id = await conn.fetchval("SELECT id FROM jobs WHERE interaction_id = $1", quick.id)
    await double.slash("bob", "general", "show", job=quick_id)
    again = await double.wait_for_message("general", lambda m: is_grid(m) and m.id != grid.id)
    assert again.custom_ids() == grid.custom_ids()
    assert not any(is_grid(m) and "slow owl" in m.content
                   for m in double.channel_messages("general"))


async def test_dreamloop_run_on_the_embedded_default_is_the_whole_product(double, cli_env):
    """The README's main job: only a token (and here the double's addresses) set, so
    PostgreSQL and Redis are embedded under the data folder; SIGTERM stops it cleanly,
    embedded servers included."""
    # A short folder: PostgreSQL's socket path must fit in 107 bytes.
    data = Path(tempfile.mkdtemp(prefix="dl-", dir="/tmp"))
    env = cli_env | {"DREAMLOOP_DATA_DIR": str(data), "DREAMLOOP_DISCORD_TOKEN": double.token,
                     "DREAMLOOP_DISCORD_API_BASE": double.api_base,
                     "DREAMLOOP_DISCORD_GATEWAY_URL": double.gateway_url}
    everything = BotProcess(env, data / "run.log", "run", "--sync-commands", "--guild",
                            str(double.guild_id), "--model", "tiny-random")
    everything.start()
    try:
        await double.wait_until_connected(timeout=120)
        await double._until(lambda: double.command_syncs == 1, 30, "no command sync")
        # No model named: `run --model tiny-random` makes what it serves the default.
        await double.slash("alice", "art", "imagine", prompt="a lighthouse")
        grid = await double.wait_for_message("art", is_grid, timeout=120)
        assert "a lighthouse" in grid.content
        everything.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(everything.process.wait, 60) == 0
        assert not (data / "postgres" / "postmaster.pid").exists()  # embedded server stopped
    finally:
        everything.kill()
        shutil.rmtree(data, ignore_errors=True)


async def test_a_result_20_minutes_after_the_command_is_still_delivered(double, db, stack):
    for worker in stack.workers:
        worker.stop()  # the queue is long today
    await double.slash("alice", "general", "imagine", prompt="a patient snail",
                       model="tiny-random")
    await double.wait_for_message("general", lambda m: "a patient snail" in m.content)
    double.clock.advance(20 * 60)  # the interaction token died 5 minutes ago
    stack.workers.append(Worker(stack.env, stack.folder / "late-worker.log"))
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    assert "a patient snail" in grid.content  # an ordinary message: no token needed


async def test_a_double_click_makes_one_job_and_one_feedback_event(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a twin star", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job_id = int(grid.custom_ids()[0].split(":")[2])
    first = await double.click("bob", grid, f"dl:v:{job_id}:1")
    second = await double.click("bob", grid, f"dl:v:{job_id}:1")
    for click in (first, second):
        await double.wait_for_callback(click)
    def replies() -> list[str]:
        return [m.content for m in double.channel_messages("general", viewer="bob")]

    await double._until(lambda: any("same button twice" in r for r in replies())
                        and any("Varying image #1" in r for r in replies()), 30,
                        "no reply to both clicks")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs WHERE kind = 'variation'") == 1
        assert await conn.fetchval("SELECT count(*) FROM feedback_events") == 1


async def test_repeat_queues_one_job_per_repeat_with_later_seeds(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a comet --repeat 2 --seed 100",
                       model="tiny-random")
    await double._until(lambda: sum(is_grid(m) for m in double.channel_messages("general"))
                        == 2, 120, "not both grids arrived")
    async with db.acquire() as conn:
        seeds = [r["seed"] for r in await conn.fetch(
            "SELECT (request->>'seed')::bigint AS seed FROM jobs ORDER BY id")]
    assert seeds == [100, 104]  # repeat 2 starts after the first one's four images
