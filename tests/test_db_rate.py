"""/rate in PostgreSQL: what it may show, the pairs shown, votes (one per member and pair),
controls and the reliability they give, and unreliable votes left out of ratings and
exports (db/rate_pairs.py, db/migrations/0004_rate.sql)."""

from __future__ import annotations

import random

from db.exports import comparisons_for_export
from db.feedback import leaderboard_rows, version_battles
from db.images import job_images
from db.jobs import complete_job, create_job
from db.model_versions import ensure_model_version
from db.rate_pairs import (
    Reliability,
    Vote,
    answered_pairs,
    member_reliability,
    next_pair,
    record_vote,
    same_prompt_candidates,
    show_pair,
)
from flywheel.leaderboard import build_leaderboard
from flywheel.rate_pairs import Candidate, PairToShow, choose_real_pair, pair_key
from generation.contract import JobKind
from tests.factories import imagine_request, result_for

ALICE, BOB, CAROL = 101, 102, 103


async def grid(conn, prompt: str, version: str, member: int, seed: int, **changes) -> list:
    """A finished job's images, drawn by `version` for `member`."""
    made = await ensure_model_version(conn, version, "tiny-random", "builtin")
    request = imagine_request(prompt=prompt, seed=seed, user_id=member, **changes)
    job, _ = await create_job(conn, request, model_version_id=made.id)
    await complete_job(conn, result_for(job.id, request))
    return [Candidate(i.id, prompt, made.id, member) for i in await job_images(conn, job.id)]


async def test_only_images_of_finished_text_to_image_jobs_are_rated(db):
    async with db.acquire() as conn:
        fox = await grid(conn, "a fox", "v1", ALICE, 1, num_images=2)
        owl = await grid(conn, "an owl", "v1", ALICE, 2, num_images=1)  # alone: no pair
        await grid(conn, "a cat", "v1", ALICE, 3, kind=JobKind.IMAGINE, num_images=2,
                   parent_image="prompts/1.png", strength=0.5)  # an image prompt
        await create_job(conn, imagine_request(prompt="a cat", user_id=ALICE),
                         model_version_id=fox[0].version_id)  # not drawn yet
        found = await same_prompt_candidates(conn)
    assert sorted(found, key=lambda c: c.image_id) == fox + owl
    assert choose_real_pair(owl, set(), random.Random(1)) is None


async def test_a_vote_on_a_real_pair_becomes_one_explicit_comparison(db):
    async with db.acquire() as conn:
        left, right = (await grid(conn, "a fox", "v1", ALICE, 1, num_images=1)
                       + await grid(conn, "a fox", "v2", ALICE, 2, num_images=1))
        shown = await show_pair(conn, BOB, PairToShow(left, right, "a fox"))
        assert await record_vote(conn, shown.id, BOB, "b", interaction_id=9001) is Vote.COUNTED
        # a second click, and another member's click on Bob's pair, change nothing
        assert await record_vote(conn, shown.id, BOB, "a", 9002) is Vote.ALREADY_ANSWERED
        assert await record_vote(conn, shown.id, CAROL, "a", 9003) is Vote.NOT_THEIRS
        assert await record_vote(conn, shown.id + 1, BOB, "a", 9004) is Vote.GONE
        pair = await conn.fetchrow("SELECT * FROM comparisons")
        event = await conn.fetchrow("SELECT * FROM feedback_events")
        assert await conn.fetchval("SELECT count(*) FROM comparisons") == 1
    assert (pair["image_a_id"], pair["image_b_id"], pair["label"], pair["source"],
            pair["member_id"], pair["shown_slot_a"], pair["shown_slot_b"], pair["prompt"]) == (
        left.image_id, right.image_id, "b", "explicit", BOB, 1, 2, "a fox")
    assert pair["decision_ms"] >= 0 and pair["feedback_event_id"] == event["id"]
    assert (event["kind"], event["image_id"], event["shown_slot"], event["interaction_id"]) == (
        "vote", right.image_id, 2, 9001)


async def test_a_control_answer_is_no_comparison_and_counts_towards_reliability(db):
    async with db.acquire() as conn:
        fox = await grid(conn, "a fox", "v1", ALICE, 1, num_images=4)
        owl = await grid(conn, "an owl", "v1", ALICE, 2, num_images=4)
        answers = ["a", "a", "b", "tie", "a"]  # the decoy is always on the right
        for shown_image, decoy, answer in zip(fox, owl, answers, strict=False):
            shown = await show_pair(conn, BOB, PairToShow(shown_image, decoy, "a fox", decoy))
            assert await record_vote(conn, shown.id, BOB, answer) is Vote.COUNTED
        assert await member_reliability(conn, BOB) == Reliability(4, 2, False)  # b and tie fail
        assert await conn.fetchval("SELECT count(*) FROM comparisons") == 0
        assert await answered_pairs(conn, BOB, [fox[0].image_id]) == {
            pair_key(fox[0].image_id, owl[0].image_id)}


async def unreliable_bob_and_reliable_carol(conn) -> tuple[list, list]:
    """Bob fails 3 of 5 controls, Carol passes all 5; both vote v2 over v1 on real pairs."""
    decoys = await grid(conn, "an owl", "v1", ALICE, 9, num_images=4)
    v1 = await grid(conn, "a fox", "v1", ALICE, 1, num_images=4)
    v2 = await grid(conn, "a fox", "v2", ALICE, 2, num_images=4)
    for member, answers in ((BOB, "abbba"), (CAROL, "aaaaa")):
        for n, answer in enumerate(answers):  # decoy on the right: "a" passes
            shown = await show_pair(conn, member, PairToShow(v1[n % 4], decoys[n // 2],
                                                             "a fox", decoys[n // 2]))
            await record_vote(conn, shown.id, member, answer)
        shown = await show_pair(conn, member, PairToShow(v1[0], v2[0], "a fox"))
        await record_vote(conn, shown.id, member, "b")
    return v1, v2


async def test_unreliable_members_votes_are_kept_but_left_out_of_ratings_and_exports(db):
    async with db.acquire() as conn:
        await unreliable_bob_and_reliable_carol(conn)
        assert await member_reliability(conn, BOB) == Reliability(5, 2, True)
        assert await member_reliability(conn, CAROL) == Reliability(5, 5, False)
        assert await conn.fetchval("SELECT count(*) FROM comparisons") == 2  # kept
        assert await version_battles(conn, ["explicit"]) == [("v1", "v2", "b")]  # Carol's
        exported = await comparisons_for_export(conn, ["explicit"])
        everything = await comparisons_for_export(conn, ["explicit"], include_unreliable=True)
    assert [(row["member_id"], row["reliability"]) for row in exported] == [(CAROL, 1.0)]
    assert sorted((row["member_id"], row["reliability"]) for row in everything) == [
        (BOB, 0.4), (CAROL, 1.0)]


async def test_next_pair_shows_every_pair_once_then_nothing(db):
    async with db.acquire() as conn:
        fox = (await grid(conn, "a fox", "v1", ALICE, 1, num_images=2)
               + await grid(conn, "a fox", "v2", ALICE, 2, num_images=2))
    rng, seen = random.Random(11), set()
    while True:
        async with db.acquire() as conn:
            shown = await next_pair(conn, ALICE, rng)
            if shown is None:
                break
            row = await conn.fetchrow("SELECT * FROM rate_pairs WHERE id = $1", shown.id)
            await record_vote(conn, shown.id, ALICE, "tie")
        key = pair_key(row["left_image_id"], row["right_image_id"])
        assert key not in seen and row["decoy_image_id"] is None  # all hers: no control
        seen.add(key)
    assert len(seen) == 6  # every pair of the 4 images of one prompt
    assert {i.image_id for pair in seen for i in fox if i.image_id in pair} == {
        i.image_id for i in fox}


async def board_after_votes(db, labels: list[str]):
    """Each label one member's vote on the same shown pair; the leaderboard after them."""
    async with db.acquire() as conn:
        left, right = await grid(conn, "a fox", "v1", ALICE, 1, num_images=2)
        for member, label in enumerate(labels, start=1000):
            shown = await show_pair(conn, member, PairToShow(left, right, "a fox"))
            await record_vote(conn, shown.id, member, label)
        rows = await leaderboard_rows(conn, ["explicit"])
    return rows, build_leaderboard("explicit", rows, rounds=5)


async def test_votes_that_favour_the_left_side_are_reported_as_position_biased(db):
    rows, board = await board_after_votes(db, ["a"] * 75 + ["b"] * 25 + ["tie"] * 10)
    assert sorted(rows.voted_sides) == [1] * 75 + [2] * 25  # ties name no side
    assert board.side_biased and board.side_win_rates == (0.75, 0.25)


async def test_votes_split_evenly_between_sides_are_not(db):
    _, board = await board_after_votes(db, ["a", "b"] * 50)
    assert not board.side_biased and board.side_win_rates == (0.5, 0.5)
