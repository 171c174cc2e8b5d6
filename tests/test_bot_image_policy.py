"""A server's image policy end to end: the real bot and worker on the tiny model against the
double, real PostgreSQL and Redis. The tests cannot ship explicit images, so the worker
runs the test-only classifier through the same hook (generation/safety.py): it flags the
images drawn from seed FLAGGED_SEED, so `--seed FLAGGED_SEED` flags slot 1 of a grid and
nothing else. The policy, delivery, buttons and storage are the real ones."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.image_policy import HELD_BACK, HELD_BACK_TILE
from db.images import job_images
from db.moderation_log import recent_actions
from tests.bot_stack import is_grid, reply_to

pytestmark = pytest.mark.timeout(300)

FLAGGED_SEED = 1000


@pytest.fixture
def stack_overrides() -> dict[str, str]:
    return {"DREAMLOOP_IMAGE_CLASSIFIER": f"test-flag-seeds:{FLAGGED_SEED}"}


async def imagine(double, channel: str, prompt: str):
    """/imagine by bob with slot 1 flagged; its grid message and job id."""
    await double.slash("bob", channel, "imagine", prompt=f"{prompt} --seed {FLAGGED_SEED}",
                       model="tiny-random")
    grid = await double.wait_for_message(channel, lambda m: is_grid(m) and prompt in m.content,
                                         timeout=120)
    return grid, int(grid.custom_ids()[0].split(":")[2])


def tiles(grid) -> tuple[str, list[np.ndarray]]:
    """The grid's filename and its four tiles' pixels (slot 1 first)."""
    [(name, data)] = grid.files.items()
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    h, w = pixels.shape[0] // 2, pixels.shape[1] // 2
    return name, [pixels[y:y + h, x:x + w] for y in (0, h) for x in (0, w)]


def held_back(tile: np.ndarray) -> bool:
    """Mostly the grey held-back colour (the text on it is lighter)."""
    grey = np.all(np.abs(tile - HELD_BACK_TILE) <= 6, axis=-1)
    return grey.mean() > 0.6


async def clicked(double, channel: str, grid, custom_id: str, answer: str) -> None:
    """Bob clicks; wait until he is told answer once more than before the click (buttons
    answer with an ephemeral follow-up)."""
    def count() -> int:
        return sum(m.content == answer for m in double.channel_messages(channel, viewer="bob"))

    before = count()
    await double.click("bob", grid, custom_id)
    await double._until(lambda: count() > before, 30, f"bob was never told {answer!r}")


async def log_rows(db, double, action: str) -> list[tuple]:
    async with db.acquire() as conn:
        entries = await recent_actions(conn, double.guild_id, action=action)
    return [(e.actor_id, e.target_id, e.detail) for e in entries]


async def test_by_default_flagged_images_show_only_in_age_restricted_channels(double, db,
                                                                              stack):
    grid, job = await imagine(double, "general", "a quiet lake")
    name, [first, *others] = tiles(grid)
    assert name == f"dreamloop-{job}.webp"
    assert held_back(first) and not any(held_back(tile) for tile in others)
    async with db.acquire() as conn:
        assert [(i.slot, i.flagged, i.safety_labels) for i in await job_images(conn, job)] == [
            (1, True, {"TEST_FLAGGED_SEED": 1.0})] + [(s, False, {}) for s in (2, 3, 4)]
    bob = double.user_id("bob")
    assert await log_rows(db, double, "image_blocked") == [
        (None, bob, {"job": job, "slot": 1, "labels": {"TEST_FLAGGED_SEED": 1.0}})]

    # U1 and V1 on the held-back tile answer so and make nothing; U2 is an ordinary image.
    for action in ("u", "v"):
        await clicked(double, "general", grid, f"dl:{action}:{job}:1", HELD_BACK)
    await clicked(double, "general", grid, f"dl:u:{job}:2", "Image #2 is below.")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1
    assert len(await log_rows(db, double, "image_blocked")) == 3

    await double.add_channel("after-dark", nsfw=True)
    grid, job = await imagine(double, "after-dark", "a night lake")
    name, shown = tiles(grid)
    assert name == f"dreamloop-{job}.webp" and not any(held_back(tile) for tile in shown)
    await clicked(double, "after-dark", grid, f"dl:u:{job}:1", "Image #1 is below.")
    image = await double.wait_for_message("after-dark", lambda m: "Image #1" in m.content)
    assert list(image.files) == [f"dreamloop-{job}-1.png"]
    assert len(await log_rows(db, double, "image_blocked")) == 3  # nothing held back there


async def test_admins_choose_spoiler_or_block(double, db, stack):
    refused = await double.slash("bob", "general", "settings server", image_policy="allow")
    assert "Only members with the Manage Server permission" in await reply_to(double, refused)
    alice, bob = double.user_id("alice"), double.user_id("bob")
    assert await log_rows(db, double, "refused_not_an_admin") == [
        (None, bob, {"command": "/settings server"})]
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT settings FROM guilds WHERE id = $1",
                                   double.guild_id) in (None, {})

    spoiler = await double.slash("alice", "general", "settings server", image_policy="spoiler")
    assert await reply_to(double, spoiler) == "This server's settings: image policy: spoiler"
    assert await log_rows(db, double, "settings_changed") == [
        (alice, None, {"image_policy": "spoiler"})]
    grid, job = await imagine(double, "general", "a windy hill")
    name, shown = tiles(grid)
    assert name == f"SPOILER_dreamloop-{job}.webp" and not any(held_back(t) for t in shown)
    await clicked(double, "general", grid, f"dl:u:{job}:1", "Image #1 is below.")
    image = await double.wait_for_message("general", lambda m: "Image #1" in m.content)
    assert list(image.files) == [f"SPOILER_dreamloop-{job}-1.png"]
    shown = await double.slash("alice", "general", "show", job=job)  # a re-post: the same
    assert await reply_to(double, shown) == f"Job {job} is posted below."
    posts = [m for m in double.channel_messages("general") if is_grid(m)
             and f"dl:u:{job}:1" in m.custom_ids()]
    assert [list(m.files) for m in posts] == [[f"SPOILER_dreamloop-{job}.webp"]] * 2
    detail = {"job": job, "slot": 1, "labels": {"TEST_FLAGGED_SEED": 1.0}}
    assert await log_rows(db, double, "image_spoilered") == [(None, bob, detail)] * 3

    block = await double.slash("alice", "general", "settings server", image_policy="block")
    assert await reply_to(double, block) == "This server's settings: image policy: block"
    await double.add_channel("after-dark", nsfw=True)
    grid, job = await imagine(double, "after-dark", "a dark hill")  # held back even here
    name, [first, *others] = tiles(grid)
    assert name == f"dreamloop-{job}.webp"
    assert held_back(first) and not any(held_back(tile) for tile in others)
    await clicked(double, "after-dark", grid, f"dl:u:{job}:1", HELD_BACK)
    assert [row[2]["job"] for row in await log_rows(db, double, "image_blocked")] == [job] * 2
