"""flywheel.ratings: Bradley–Terry fit against known truth and two independent references,
bootstrap coverage, position bias, agreement and the edge cases."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import choix
import numpy as np
import pytest
from scipy import optimize, stats

from flywheel.ratings import (
    Agreement,
    Battle,
    Interval,
    agreement,
    bootstrap_intervals,
    chi2_sf,
    fit_bradley_terry,
    position_bias,
    votes_per_day,
)

TRUE = {"m0": 1240.0, "m1": 1120.0, "m2": 1040.0, "m3": 960.0, "m4": 880.0, "m5": 760.0}


def simulate(true: dict[str, float], votes: int, seed: int, tie_rate: float = 0.1) -> list[Battle]:
    """Battles from Bradley–Terry where a tie counts half: P(tie) = t, P(a wins) = p − t/2,
    so model_a's expected score is exactly p = 1 / (1 + 10^((r_b − r_a)/400))."""
    rng = np.random.default_rng(seed)
    names = list(true)
    ratings = np.array([true[m] for m in names])
    a = rng.integers(0, len(names), votes)
    b = (a + rng.integers(1, len(names), votes)) % len(names)
    p = 1 / (1 + 10 ** ((ratings[b] - ratings[a]) / 400))
    t = np.minimum(tie_rate, 2 * np.minimum(p, 1 - p))
    u = rng.random(votes)
    outcome = np.where(u < t, "tie", np.where(u < p + t / 2, "a", "b")).astype(object)
    outcome[(outcome == "tie") & (rng.random(votes) < 0.3)] = "both_bad"
    return [Battle(names[i], names[j], str(o)) for i, j, o in zip(a, b, outcome, strict=True)]


def centred(ratings: dict[str, float]) -> dict[str, float]:
    mean = sum(ratings.values()) / len(ratings)
    return {m: r - mean + 1000 for m, r in ratings.items()}


def doubled_pairs(battles: list[Battle], index: dict[str, int]) -> list[tuple[int, int]]:
    """FastChat's counting for choix (winner, loser) data: a win twice, a tie once each way."""
    data = []
    for x in battles:
        a, b = index[x.model_a], index[x.model_b]
        data += {"a": [(a, b)] * 2, "b": [(b, a)] * 2}.get(x.outcome, [(a, b), (b, a)])
    return data


def logistic_reference(battles: list[Battle], models: list[str], prior: float) -> dict[str, float]:
    """FastChat's logistic regression (features ±ln 10, SCALE 400, INIT 1000) fitted with scipy,
    plus `prior`/2 wins and losses for each model against a virtual opponent at strength 0."""
    index = {m: i for i, m in enumerate(models)}
    rows, y, w = [], [], []
    for x in battles:
        row = np.zeros(len(models))
        row[index[x.model_a]], row[index[x.model_b]] = math.log(10), -math.log(10)
        score = {"a": 1.0, "b": 0.0}.get(x.outcome, 0.5)
        rows += [row, row]
        y += [1.0, 0.0]
        w += [score, 1 - score]
    for m in models:
        row = np.zeros(len(models))
        row[index[m]] = math.log(10)
        rows += [row, row]
        y += [1.0, 0.0]
        w += [prior / 2, prior / 2]
    features, y, w = np.array(rows), np.array(y), np.array(w)

    def loss(theta):
        z = features @ theta
        value = np.sum(w * (np.logaddexp(0, z) - y * z))
        return value, features.T @ (w * (1 / (1 + np.exp(-z)) - y))

    fit = optimize.minimize(loss, np.zeros(len(models)), jac=True, method="BFGS", tol=1e-12)
    return {m: 400 * fit.x[index[m]] + 1000 for m in models}


# --- the fit ---------------------------------------------------------------------------------


def test_recovers_true_order_and_values():
    fitted = fit_bradley_terry(simulate(TRUE, 4000, seed=1))
    assert list(fitted) == list(TRUE)  # best first, and in the true order
    assert sum(fitted.values()) / len(fitted) == pytest.approx(1000)
    assert max(abs(fitted[m] - TRUE[m]) for m in TRUE) < 40  # standard errors are ~12 points


def test_scale_and_ties_follow_fastchat():
    # 9 wins, 1 loss, 2 ties: a score of 10 out of 12, odds 5:1, so a gap of 400·log10(5).
    ties = [("y", "x", "tie"), ("x", "y", "both_bad")]
    battles = [("x", "y", "a")] * 9 + [("x", "y", "b"), *ties]
    fitted = fit_bradley_terry(battles, prior=0)
    assert fitted["x"] - fitted["y"] == pytest.approx(400 * math.log10(5), abs=1e-6)
    assert fitted["x"] + fitted["y"] == pytest.approx(2000)
    ten_to_one = [("x", "y", "a")] * 10 + [("x", "y", "b")]
    fitted = fit_bradley_terry(ten_to_one, prior=0, scale=1, base=0)
    assert fitted["x"] - fitted["y"] == pytest.approx(1.0, abs=1e-9)


def test_matches_choix_within_a_point():
    battles = simulate(TRUE, 5000, seed=2)
    models = sorted(TRUE)
    index = {m: i for i, m in enumerate(models)}
    data = doubled_pairs(battles, index)
    plain, default = fit_bradley_terry(battles, prior=0), fit_bradley_terry(battles)
    for params in (
        choix.ilsr_pairwise(len(models), data, tol=1e-12),
        choix.opt_pairwise(len(models), data, alpha=0, tol=1e-10),
    ):
        reference = centred({m: params[index[m]] * 400 / math.log(10) for m in models})
        assert max(abs(plain[m] - reference[m]) for m in models) < 0.01
        assert max(abs(default[m] - reference[m]) for m in models) < 1.0


def test_matches_logistic_regression_with_the_prior():
    battles = simulate(TRUE, 3000, seed=3)[:300]  # few votes, so the prior matters
    models = sorted(TRUE)
    for prior in (1.0, 5.0):
        fitted = fit_bradley_terry(battles, prior=prior)
        reference = centred(logistic_reference(battles, models, prior))
        assert max(abs(fitted[m] - reference[m]) for m in models) < 0.01
    assert max(abs(fitted[m] - fit_bradley_terry(battles)[m]) for m in models) > 1  # it shows


def test_anchor_places_one_model_at_base_and_keeps_gaps():
    battles = simulate(TRUE, 2000, seed=4)
    mean_centred = fit_bradley_terry(battles)
    anchored = fit_bradley_terry(battles, anchor="m3", base=1500)
    assert anchored["m3"] == 1500
    gaps = {m: anchored[m] - mean_centred[m] for m in TRUE}
    assert max(gaps.values()) - min(gaps.values()) < 1e-6


def test_perfect_records_stay_finite_and_ordered():
    three_nil = fit_bradley_terry([("x", "y", "a")] * 3)
    thirty_nil = fit_bradley_terry([("x", "y", "a")] * 30)
    assert 300 < three_nil["x"] - three_nil["y"] < 500
    assert three_nil["x"] - three_nil["y"] < thirty_nil["x"] - thirty_nil["y"] < 2000
    chain = fit_bradley_terry([("a", "b", "a"), ("b", "c", "a"), ("c", "b", "a"), ("c", "d", "a")])
    assert list(chain) == ["a", "c", "b", "d"]  # c: 2 wins, 1 loss; b: 1 win, 2 losses
    with pytest.raises(ValueError, match=r"never lost: \['x'\]; never won: \['y'\]"):
        fit_bradley_terry([("x", "y", "a")] * 3, prior=0)
    split = [("a", "b", "a"), ("b", "a", "a"), ("c", "d", "a"), ("d", "c", "a")]
    with pytest.raises(ValueError, match="never beat or tied"):
        fit_bradley_terry(split, prior=0)
    assert len(fit_bradley_terry(split)) == 4


def test_empty_single_pair_and_bad_input():
    assert fit_bradley_terry([]) == {}
    assert bootstrap_intervals([]) == {}
    assert fit_bradley_terry([("x", "y", "tie")] * 4) == {"x": 1000.0, "y": 1000.0}
    with pytest.raises(ValueError, match="'solo'"):
        Battle("solo", "solo", "a")
    with pytest.raises(ValueError, match="'draw'"):
        fit_bradley_terry([("x", "y", "draw")])
    with pytest.raises(ValueError, match=r"`model_b`.*''"):
        Battle("x", "", "a")
    for options, word in [
        ({"scale": 0}, "scale"),
        ({"prior": -1}, "prior"),
        ({"prior": math.inf}, "prior"),
        ({"anchor": "nobody"}, "'nobody'"),
    ]:
        with pytest.raises(ValueError, match=word):
            fit_bradley_terry([("x", "y", "a"), ("y", "x", "a")], **options)
    with pytest.raises(ValueError, match="rounds"):
        bootstrap_intervals([("x", "y", "a")], rounds=0)
    with pytest.raises(ValueError, match=r"1\.5"):
        bootstrap_intervals([("x", "y", "a")], confidence=1.5)


# --- bootstrap -------------------------------------------------------------------------------


def test_bootstrap_intervals_cover_the_truth_at_about_the_stated_rate():
    truth = centred({m: TRUE[m] for m in ("m0", "m1", "m2", "m3", "m4")})
    covered, errors, half_widths = [], [], []
    for seed in range(30):
        intervals = bootstrap_intervals(simulate(truth, 1500, seed=100 + seed), seed=seed)
        for m, iv in intervals.items():
            covered.append(iv.low <= truth[m] <= iv.high)
            errors.append(iv.rating - truth[m])
            half_widths.append((iv.high - iv.low) / 2)
    coverage = np.mean(covered)
    assert 0.88 <= coverage <= 0.99, coverage
    # The intervals are as wide as the real scatter of the estimates (1.96 standard errors).
    ratio = np.mean(half_widths) / (1.96 * np.std(errors))
    assert 0.8 < ratio < 1.25, ratio


def test_bootstrap_point_progress_seed_and_anchor():
    battles = simulate(TRUE, 1000, seed=5)
    calls = []
    intervals = bootstrap_intervals(battles, rounds=20, on_round=lambda k, n: calls.append((k, n)))
    assert calls == [(k, 20) for k in range(1, 21)]
    assert {m: iv.rating for m, iv in intervals.items()} == fit_bradley_terry(battles)
    assert list(intervals) == list(fit_bradley_terry(battles))
    assert all(iv.low < iv.rating < iv.high for iv in intervals.values())
    assert intervals == bootstrap_intervals(battles, rounds=20)
    assert intervals != bootstrap_intervals(battles, rounds=20, seed=1)
    narrow = bootstrap_intervals(battles, rounds=20, confidence=0.5)
    assert all(narrow[m].high - narrow[m].low < iv.high - iv.low for m, iv in intervals.items())
    anchored = bootstrap_intervals(battles, rounds=10, anchor="m2")
    assert anchored["m2"] == Interval(1000.0, 1000.0, 1000.0)


# --- position bias ---------------------------------------------------------------------------


def test_position_bias_finds_a_planted_preference_for_slot_one():
    rng = np.random.default_rng(7)
    planted = rng.choice([1, 2, 3, 4], size=2000, p=[0.31, 0.23, 0.23, 0.23]).tolist()
    fair = rng.choice([1, 2, 3, 4], size=2000).tolist()
    biased, unbiased = position_bias(planted), position_bias(fair)
    assert biased.biased and biased.p_value < 1e-4
    assert biased.first_slot_rate == pytest.approx(planted.count(1) / 2000)
    assert not unbiased.biased and unbiased.p_value > 0.05
    assert sum(unbiased.win_rates) == pytest.approx(1.0)
    reference = stats.chisquare(biased.wins)
    assert biased.chi2 == pytest.approx(reference.statistic)
    assert biased.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_position_bias_of_pairwise_votes():
    rng = np.random.default_rng(8)
    left_heavy = position_bias(rng.choice([1, 2], size=3000, p=[0.56, 0.44]).tolist(), slots=2)
    assert left_heavy.biased and 0.54 < left_heavy.first_slot_rate < 0.58
    even = position_bias(rng.choice([1, 2], size=3000).tolist(), slots=2)
    assert not even.biased
    assert even.p_value == pytest.approx(stats.chisquare(even.wins).pvalue, rel=1e-9)


def test_position_bias_edges():
    empty = position_bias([])
    assert empty.picks == 0 and not empty.biased and all(math.isnan(r) for r in empty.win_rates)
    with pytest.raises(ValueError, match="got 5"):
        position_bias([1, 5])
    with pytest.raises(ValueError, match="slots"):
        position_bias([1], slots=1)
    with pytest.raises(ValueError, match="alpha"):
        position_bias([1], alpha=0)


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10])
def test_chi2_survival_matches_scipy(df):
    for x in (0.01, 0.5, 1.0, 3.0, 7.8, 15.0, 40.0):
        assert chi2_sf(x, df) == pytest.approx(stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)
    assert chi2_sf(0.0, df) == 1.0


# --- agreement and counts --------------------------------------------------------------------


def test_agreement_on_a_small_example():
    votes = [
        ("p1", "alice", "a"),
        ("p1", "bob", "a"),
        ("p1", "carol", "b"),  # p1: alice–bob agree, alice–carol and bob–carol do not
        ("p2", "alice", "a"),
        ("p2", "alice", "tie"),  # her last vote counts
        ("p2", "bob", "both_bad"),  # p2: a tie and "both bad" agree
        ("p3", "dave", "a"),  # a single voter: not counted
        ("p4", "erin", "tie"),
        ("p4", "frank", "b"),  # p4: a tie does not agree with a preference
    ]
    assert agreement(votes) == Agreement(rate=2 / 5, voter_pairs=5, items=3)
    assert math.isnan(agreement([("p", "x", "a")]).rate)
    with pytest.raises(ValueError, match="'left'"):
        agreement([("p", "x", "left")])


def test_votes_per_day_counts_utc_days_and_fills_gaps():
    plus_two = timezone(timedelta(hours=2))
    stamps = [
        datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
        datetime(2025, 3, 2, 1, 0, tzinfo=plus_two),  # 23:00 UTC on the 1st
        datetime(2025, 3, 1, 8, 0),  # naive: taken as UTC
        datetime(2025, 3, 4, 0, 0, tzinfo=UTC),
    ]
    assert votes_per_day(stamps) == [
        (date(2025, 3, 1), 3),
        (date(2025, 3, 2), 0),
        (date(2025, 3, 3), 0),
        (date(2025, 3, 4), 1),
    ]
    assert votes_per_day([]) == []
    with pytest.raises(ValueError, match="'yesterday'"):
        votes_per_day(["yesterday"])
