"""Midjourney's prompt syntax through the real bot, the Discord double, a worker on the tiny
model and real PostgreSQL and Redis: permutations, multi-prompt weights, --stop, and the
Midjourney flags dreamloop refuses."""

from __future__ import annotations

import pytest

from db.jobs import get_job
from tests.bot_stack import is_grid, reply_to

pytestmark = pytest.mark.timeout(300)


async def jobs(db) -> list:
    async with db.acquire() as conn:
        ids = [row["id"] for row in await conn.fetch("SELECT id FROM jobs ORDER BY id")]
        return [await get_job(conn, job_id) for job_id in ids]


def grids(double) -> int:
    return sum(is_grid(m) for m in double.channel_messages("general"))


async def test_a_permutation_prompt_makes_one_job_per_option(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a {red, green} fox --seed 5",
                       model="tiny-random")
    await double._until(lambda: grids(double) == 2, 120, "not both grids arrived")
    made = await jobs(db)
    assert [job.request.prompt for job in made] == ["a red fox", "a green fox"]
    assert [job.request.seed for job in made] == [5, 5]  # --seed holds for each permutation
    # every message, deleted ones too: a status message goes once its grid is posted
    posts = [m.content for m in double.messages.values() if not is_grid(m)]
    for prompt in ("a red fox", "a green fox"):  # each job has its own status message
        assert sum(post.startswith(f"**{prompt}** — ") for post in posts) == 1


async def test_permutations_times_repeat_past_40_jobs_are_refused_making_none(double, db,
                                                                               stack):
    options = ", ".join(f"colour{i}" for i in range(11))
    interaction = await double.slash("alice", "general", "imagine",
                                     prompt=f"a {{{options}}} fox --repeat 4",
                                     model="tiny-random")
    answer = await reply_to(double, interaction)
    assert answer.startswith("11 prompts with their --repeat make 44 jobs: one prompt makes at "
                             "most 40 jobs")
    unbalanced = await double.slash("alice", "general", "imagine", prompt="a {red, green fox",
                                    model="tiny-random")
    assert (await reply_to(double, unbalanced)).startswith(
        "The { at character 3 is never closed with }")
    assert await jobs(db) == []


async def test_a_multi_prompt_and_stop_are_drawn_and_the_prompt_echoed_as_typed(double, db,
                                                                                stack):
    await double.slash("alice", "general", "imagine",
                       prompt="hot dog::2 animal::-0.5 --stop 50", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    [job] = await jobs(db)
    assert job.status == "succeeded" and job.request.stop == 50
    assert [(p.text, p.weight) for p in job.request.prompt_parts] == [("hot dog", 2.0),
                                                                      ("animal", -0.5)]
    assert job.request.prompt == "hot dog::2 animal::-0.5"
    assert "hot dog::2 animal::-0.5" in grid.content


async def test_a_midjourney_version_flag_is_refused_naming_our_models(double, db, stack):
    interaction = await double.slash("alice", "general", "imagine", prompt="a fox --v 6.1",
                                     model="tiny-random")
    answer = await reply_to(double, interaction)
    assert answer == ("--v picks a Midjourney model: dreamloop picks one of its own models "
                      "with --model NAME (flux-schnell, sd15, sdxl, tiny-random).")
    assert await jobs(db) == []
