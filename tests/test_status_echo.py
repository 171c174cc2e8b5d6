"""What the bot echoes in a channel fits Discord's 2,000-character content limit, with the
prompt shown as typed (markdown escaped) and shortened with an ellipsis; worker errors are
escaped and capped; follow-up work says what it is."""

from __future__ import annotations

from types import SimpleNamespace

import discord
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.status import (
    CONTENT_LIMIT,
    ERROR_ROOM,
    cannot_post,
    discord_length,
    echo,
    failure_text,
    image_text,
    shorten,
    status_text,
    with_prompt,
)
from generation.contract import JobKind
from tests.factories import imagine_request


def job(prompt: str, kind: JobKind = JobKind.IMAGINE, **changes) -> SimpleNamespace:
    request = imagine_request(prompt=prompt, kind=kind, **changes)
    return SimpleNamespace(id=12, kind=str(kind), request=request, member_id=34)


def test_discord_length_counts_utf16_code_units():
    assert [discord_length(text) for text in ("abc", "é", "🦊", "👩‍🚀")] == [3, 1, 2, 5]


def test_a_prompt_that_fits_is_only_escaped():
    assert echo("a **bold** fox_cub", 100) == "a \\*\\*bold\\*\\* fox\\_cub"


def test_a_long_prompt_is_cut_with_an_ellipsis_to_the_room():
    assert shorten("a" * 50, 10) == "a" * 9 + "…"
    assert discord_length(shorten("🦊" * 50, 11)) <= 11


def test_an_escape_is_never_cut_in_half():
    # "\_" pairs: a cut after a lone backslash would escape the ellipsis
    for room in range(2, 12):
        cut = echo("_" * 20, room)
        body = cut.removesuffix("…")
        assert cut.endswith("…") and len(body) % 2 == 0 and discord_length(cut) <= room


@pytest.mark.parametrize("prompt", ["x" * 1990, "_" * 1000, "🦊" * 1990, "*_~|`>" * 330])
def test_every_echo_of_a_long_prompt_fits_2000(prompt):
    long_job = job(prompt)
    for text in (status_text(long_job) + " — waiting: 3 of your jobs are in progress",
                 status_text(long_job) + " — (100%)", image_text(long_job, 2, 56),
                 with_prompt(prompt, "**Which image is better for:** ", "\nA is left."),
                 failure_text(long_job, "boom " * 1000)):
        assert discord_length(text) <= CONTENT_LIMIT and "…" in text


@given(st.text(max_size=4000))
def test_any_text_fits_its_room(prompt):
    text = status_text(SimpleNamespace(kind="imagine", member_id=34,
                                       request=SimpleNamespace(prompt=prompt, parent_image=None)))
    assert discord_length(text) <= CONTENT_LIMIT - 400


def test_a_worker_error_is_escaped_and_capped():
    text = failure_text(job("a fox"), "**boom** @everyone " + "x" * 5000)
    reason = text.split("could not be drawn: ", 1)[1]
    assert reason.startswith("\\*\\*boom\\*\\* @everyone") and reason.endswith("…")
    assert discord_length(reason) <= ERROR_ROOM


def test_follow_up_work_says_what_it_is():
    parent = "images/7/2.png"
    assert status_text(job("a fox", JobKind.VARIATION, parent_image=parent,
                           strength=0.7)) == (
        "**a fox** — Variations (Strong) of image #2 by <@34>")
    assert status_text(job("a fox", JobKind.VARIATION, parent_image=parent,
                           strength=0.35)).startswith("**a fox** — Variations (Subtle) of")
    assert status_text(job("a fox", JobKind.UPSCALE, parent_image=parent,
                           strength=0.3, num_images=1)) == (
        "**a fox** — Upscaled ×2 of image #2 by <@34>")
    assert status_text(job("a fox", JobKind.REROLL)) == (
        "**a fox** — Drawn again by <@34>")
    assert status_text(job("a fox")) == "**a fox** — <@34>"
    assert image_text(job("a fox"), 3, 56) == "**a fox** — Image #3 <@56>"


def test_the_escape_is_discord_pys_own():
    assert echo("a_b", 10) == discord.utils.escape_markdown("a_b")


def refusal(cls, status: int, code: int, message: str):
    response = SimpleNamespace(status=status, reason="refused")
    return cls(response, {"code": code, "message": message})


def test_a_too_long_post_is_not_taken_for_missing_permission():
    too_long = cannot_post(job("a fox"), refusal(discord.HTTPException, 400, 50035,
                                                 "Invalid Form Body"))
    closed = cannot_post(job("a fox"), refusal(discord.Forbidden, 403, 50001, "Missing Access"))
    assert "ask an admin" not in too_long and "400" in too_long
    assert "ask an admin to let me send messages" in closed
