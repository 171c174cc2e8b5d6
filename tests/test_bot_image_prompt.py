"""Image prompts end to end: an attachment or a Discord link starts the job from the image;
links off Discord's CDN, redirects and files that are not images are refused, creating
nothing."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.image_prompt import ImagePromptError, fetch_image
from tests.bot_stack import is_grid, told

pytestmark = pytest.mark.timeout(300)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


async def jobs(db) -> list:
    async with db.acquire() as conn:
        return await conn.fetch("SELECT interaction_id, request FROM jobs ORDER BY id")


async def test_an_attached_image_starts_the_job(double, db, stack):
    upload = double.upload("fox.png", png(80, 40), "image/png")
    interaction = await double.slash("alice", "general", "imagine", prompt="a fox --iw 2",
                                     model="tiny-random", image=upload)
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    [job] = await jobs(db)
    key = f"prompts/{interaction.id}.png"
    assert (job["request"]["parent_image"], job["request"]["strength"]) == (key, 0.3333)
    assert Image.open(io.BytesIO(stack.blobs.get(key))).size == (64, 64)  # fitted to the job
    assert "a fox" in grid.content


async def test_a_discord_link_first_in_the_prompt_is_an_image_prompt(double, db, stack):
    upload = double.upload("owl.webp", png(64, 64), "image/png")
    await double.slash("alice", "general", "imagine", prompt=f"{upload['url']} an owl",
                       model="tiny-random")
    await double.wait_for_message("general", lambda m: "an owl" in m.content)
    [job] = await jobs(db)
    assert job["request"]["prompt"] == "an owl" and job["request"]["strength"] == 0.5


@pytest.mark.parametrize(("link", "refusal"), [
    ("https://example.com/fox.png", "is not a Discord attachment"),
    ("{base}/redirect?to=https://example.com/fox.png", "redirects elsewhere"),
    ("{base}/ephemeral-attachments/1/gone.png", "Discord answered 404 for the image"),
    ("{text}", "The image cannot be used: image is not a readable PNG, JPEG, WEBP file"),
])
async def test_unusable_image_links_are_refused_and_create_nothing(double, db, stack, link,
                                                                  refusal):
    text = double.upload("notes.png", b"just some text", "image/png")["url"]
    link = link.format(base=f"http://127.0.0.1:{double.port}", text=text)
    await double.slash("alice", "general", "imagine", prompt=f"{link} a fox",
                       model="tiny-random")
    await told(double, "alice", refusal)
    assert await jobs(db) == []


async def test_the_fetch_stops_reading_past_the_size_cap(double, monkeypatch):
    monkeypatch.setattr("bot.image_prompt.MAX_BYTES", 1000)
    noise = Image.frombytes("RGB", (100, 100), os.urandom(30_000))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    url = double.upload("big.png", buffer.getvalue(), "image/png")["url"]
    with pytest.raises(ImagePromptError, match=r"The image is 3[0-9]{4} bytes: at most 1000"):
        await fetch_image(url, (f"http://127.0.0.1:{double.port}",))


@pytest.mark.parametrize(("data", "reason"), [
    (b"just some text", "image is not a readable PNG, JPEG, WEBP file"),
    (png(64, 64)[:-40], "image is a damaged or incomplete PNG file"),  # cut short
])
async def test_an_attachment_that_is_not_an_image_is_one_plain_sentence(double, db, stack,
                                                                       data, reason):
    upload = double.upload("notes.png", data, "image/png")
    await double.slash("alice", "general", "imagine", prompt="a fox", model="tiny-random",
                       image=upload)
    await told(double, "alice", "The image cannot be used")
    [said] = [m.content for m in double.channel_messages("general", viewer="alice")
              if "The image cannot be used" in m.content]
    # a sentence for a person: no Python object text such as <_io.BytesIO object at 0x…>
    assert said == f"The image cannot be used: {reason}."
    assert await jobs(db) == []
