"""Deficit round-robin on predicted GPU time: pure, no servers."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fair_share import Candidate, FairShare, fifo, predicted_cost

ids = itertools.count(1)


def jobs(member: int, count: int, cost: float, guild: int = 1) -> list[Candidate]:
    return [Candidate(next(ids), member, guild, cost) for _ in range(count)]


def test_the_cost_model_grows_with_steps_pixels_and_images_and_turbo_counts_double():
    base = predicted_cost(30, 512, 512, 4)
    assert base == 120
    assert predicted_cost(150, 512, 512, 4) == 5 * base
    assert predicted_cost(30, 1024, 1024, 4) == 4 * base
    assert predicted_cost(30, 512, 512, 1) == base / 4
    assert predicted_cost(30, 512, 512, 4, "turbo") == 2 * base
    assert predicted_cost(30, 512, 512, 4, "relax") == base


def test_a_light_members_job_goes_before_a_flood_that_came_first():
    flood = jobs(member=1, count=16, cost=600)  # --repeat 4 --steps 150, four times
    light = jobs(member=2, count=1, cost=120)
    share = FairShare()
    assert share.pick(flood + light, 2) == [flood[0], light[0]]
    assert fifo(flood + light, 2) == flood[:2]


def test_backlogged_members_get_equal_gpu_time_not_equal_job_counts():
    big, small = jobs(1, 40, 500), jobs(2, 200, 100)
    share, served = FairShare(), {1: 0.0, 2: 0.0}
    waiting = big + small
    for _ in range(60):
        (job,) = share.pick(waiting, 1)  # one at a time, the state carried between calls
        waiting.remove(job)
        served[job.member] += job.cost
    assert abs(served[1] - served[2]) <= 2 * 500


def test_guilds_share_first_then_their_members():
    crowd = [job for member in range(10, 15) for job in jobs(member, 10, 100, guild=1)]
    alone = jobs(99, 30, 100, guild=2)
    picked = FairShare().pick(crowd + alone, 20)
    assert sum(job.guild == 2 for job in picked) == 10  # half the GPU time for guild 2
    assert {job.member for job in picked if job.guild == 1} == set(range(10, 15))


def test_the_state_round_trips_through_json():
    waiting = jobs(1, 5, 300) + jobs(2, 5, 100) + jobs(3, 2, 50, guild=7)
    share = FairShare()
    share.pick(waiting, 3)
    again = FairShare.from_json(share.to_json())
    assert again.pick(waiting[3:], 4) == share.pick(waiting[3:], 4)


candidate_lists = st.lists(
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.floats(1, 1000)), max_size=40)


@given(candidate_lists, st.integers(0, 50))
def test_picks_are_distinct_waiting_jobs_each_members_oldest_first(rows, count):
    """(A member in two guilds is a member of each: two flows.)"""
    waiting = [Candidate(i, member, guild, cost) for i, (member, guild, cost) in
               enumerate(rows)]
    picked = FairShare().pick(waiting, count)
    assert len(picked) == min(count, len(waiting))
    assert len({job.job_id for job in picked}) == len(picked)
    for flow in {(job.member, job.guild) for job in waiting}:
        mine = [job.job_id for job in waiting if (job.member, job.guild) == flow]
        taken = [job.job_id for job in picked if (job.member, job.guild) == flow]
        assert taken == mine[:len(taken)]


@settings(deadline=None, max_examples=40)
@given(st.lists(st.floats(10, 1000), min_size=1, max_size=6), st.floats(10, 1000))
def test_a_light_job_waits_for_at_most_one_turn_of_each_other_member(flood_costs, light_cost):
    """However the others' jobs are sized, the GPU time sent before a newcomer's job is at
    most one turn of each other member: under twice the largest job each."""
    share = FairShare()
    waiting = [job for member, cost in enumerate(flood_costs, start=1)
               for job in jobs(member, 2000, cost)]
    for _ in range(5):  # the flood is in full swing
        for job in share.pick(waiting, 1):
            waiting.remove(job)
    light = Candidate(next(ids), 100, 1, light_cost)
    order = share.pick([*waiting, light], len(flood_costs) * 200 + 1)
    before = sum(job.cost for job in order[:order.index(light)])
    assert before < len(flood_costs) * 2 * max([*flood_costs, light_cost])
