"""Which pairs /rate shows (flywheel/rate_pairs.py): same prompt, two versions first, never
twice, shuffled sides, controls about one time in ten and never of the member's own images."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from flywheel.rate_pairs import (
    CONTROL_SHARE,
    Candidate,
    choose_control,
    choose_pair,
    choose_real_pair,
    pair_key,
)

ALICE, BOB = 1, 2


def images(prompt: str, version: int, member: int, *ids: int) -> list[Candidate]:
    return [Candidate(i, prompt, version, member) for i in ids]


FOX_TWO_VERSIONS = images("a fox", 1, ALICE, 1, 2) + images("a fox", 2, BOB, 3)
OWL_ONE_VERSION = images("an owl", 1, BOB, 4, 5)


def test_a_real_pair_is_two_images_of_one_prompt_from_two_versions_where_possible():
    rng = random.Random(1)
    for _ in range(200):
        pair = choose_real_pair(FOX_TWO_VERSIONS + OWL_ONE_VERSION, set(), rng)
        assert pair.left.prompt == pair.right.prompt == pair.prompt == "a fox"
        assert pair.left.version_id != pair.right.version_id
        assert pair.decoy is None


def test_two_seeds_of_one_version_when_no_pair_of_versions_is_left():
    voted = {pair_key(1, 3), pair_key(2, 3)}
    pair = choose_real_pair(FOX_TWO_VERSIONS + OWL_ONE_VERSION, voted, random.Random(2))
    assert pair_key(pair.left.image_id, pair.right.image_id) in {(1, 2), (4, 5)}


def test_a_voted_pair_never_comes_back_and_none_is_left_at_the_end():
    rng, voted = random.Random(3), set()
    for _ in range(4):  # 3 fox pairs and 1 owl pair
        pair = choose_real_pair(FOX_TWO_VERSIONS + OWL_ONE_VERSION, voted, rng)
        key = pair_key(pair.left.image_id, pair.right.image_id)
        assert key not in voted
        voted.add(key)
    assert choose_real_pair(FOX_TWO_VERSIONS + OWL_ONE_VERSION, voted, rng) is None


def test_sides_are_shuffled():
    rng = random.Random(4)
    lefts = Counter(choose_real_pair(images("a fox", 1, ALICE, 1) + images("a fox", 2, BOB, 2),
                                     set(), rng).left.image_id for _ in range(1000))
    assert 430 < lefts[1] < 570  # 500 expected; 4.4 standard deviations either way


def test_a_control_shows_the_prompt_of_one_image_against_a_decoy_of_another():
    rng = random.Random(5)
    for _ in range(200):
        pair = choose_control(FOX_TWO_VERSIONS + OWL_ONE_VERSION, ALICE, set(), rng)
        shown = pair.right if pair.decoy == pair.left else pair.left
        assert pair.decoy in (pair.left, pair.right)
        assert shown.prompt == pair.prompt != pair.decoy.prompt
        assert ALICE not in (pair.left.member_id, pair.right.member_id)  # never her own


def test_no_control_when_only_the_members_own_images_or_one_prompt_remain():
    assert choose_control(FOX_TWO_VERSIONS, ALICE, set(), random.Random(6)) is None
    assert choose_control(images("a fox", 1, ALICE, 1) + OWL_ONE_VERSION, ALICE, set(),
                          random.Random(6)) is None


def test_an_answered_control_pair_is_not_shown_again():
    candidates = images("a fox", 2, BOB, 3) + images("an owl", 1, BOB, 4)
    assert choose_control(candidates, ALICE, {pair_key(3, 4)}, random.Random(7)) is None


@pytest.mark.parametrize("seed", [8, 9])
def test_about_one_pair_in_ten_is_a_control(seed):
    rng, draws = random.Random(seed), 4000
    controls = sum(choose_pair(FOX_TWO_VERSIONS, OWL_ONE_VERSION + FOX_TWO_VERSIONS, ALICE,
                               set(), rng).decoy is not None for _ in range(draws))
    expected = CONTROL_SHARE * draws  # 400, standard deviation 19
    assert abs(controls - expected) < 4 * (draws * CONTROL_SHARE * (1 - CONTROL_SHARE)) ** 0.5


def test_a_control_that_cannot_be_made_gives_way_to_a_real_pair():
    rng = random.Random(10)
    pairs = [choose_pair(FOX_TWO_VERSIONS, images("a fox", 1, ALICE, 1), ALICE, set(), rng)
             for _ in range(300)]
    assert all(pair is not None and pair.decoy is None for pair in pairs)
