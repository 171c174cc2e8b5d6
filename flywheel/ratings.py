"""Ratings of model versions from members' votes, and checks on the votes themselves.

* `fit_bradley_terry` and `bootstrap_intervals`: the leaderboard, by the method of lm-sys
  FastChat's `elo_analysis.py` (Bradley–Terry maximum likelihood, ties count half, 100
  bootstrap rounds, percentile intervals, the Elo-like scale).
* `position_bias`: does a slot of the grid (or the left image of /rate) win more than its share?
* `agreement`: how often two members who voted on the same pair agree.
* `votes_per_day`: a daily count for charts.

Pure Python and numpy: no database, no Discord, no torch.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import combinations

import numpy as np

OUTCOMES = ("a", "b", "tie", "both_bad")
# The score of model_a in one battle: a win is 1, a loss 0, a tie (of either kind) half.
_SCORE_A = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
# What two votes must share to agree: "tie" and "both_bad" both say neither image is better.
_STANCE = {"a": "a", "b": "b", "tie": "tie", "both_bad": "tie"}


@dataclass(frozen=True)
class Battle:
    """One comparison of two model versions: outcome "a" (model_a won), "b", "tie" or "both_bad".

    "both_bad" is FastChat's "tie (bothbad)": for ratings it is a tie.
    """

    model_a: str
    model_b: str
    outcome: str

    def __post_init__(self) -> None:
        for name in ("model_a", "model_b"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"`{name}` must be a non-empty string, got {value!r}.")
        if self.model_a == self.model_b:
            raise ValueError(f"`model_a` and `model_b` must differ, both are {self.model_a!r}.")
        _check_outcome(self.outcome)


@dataclass(frozen=True)
class Interval:
    """A rating with its bootstrap confidence interval, all on the same scale."""

    rating: float
    low: float
    high: float


@dataclass(frozen=True)
class PositionBias:
    """Wins per slot (slot 1 first) against the uniform share 1/slots, with a chi-square test."""

    slots: int
    picks: int
    wins: tuple[int, ...]
    win_rates: tuple[float, ...]  # NaN when there are no picks
    chi2: float
    p_value: float
    alpha: float
    biased: bool  # p_value < alpha

    @property
    def first_slot_rate(self) -> float:
        """Win rate of slot 1: the top-left image of a grid, the left (first shown) one of /rate."""
        return self.win_rates[0]


@dataclass(frozen=True)
class Agreement:
    """Fraction of member pairs that voted the same way on the same pair of images."""

    rate: float  # NaN when no pair of images has two voters
    voter_pairs: int
    items: int  # pairs of images with at least two voters


def _check_outcome(outcome: object) -> None:
    if outcome not in _SCORE_A:
        raise ValueError(f"`outcome` must be one of {OUTCOMES}, got {outcome!r}.")


# ---------------------------------------------------------------------------------------------
# Bradley–Terry


def fit_bradley_terry(
    battles: Iterable[Battle | tuple[str, str, str]],
    *,
    scale: float = 400.0,
    base: float = 1000.0,
    anchor: str | None = None,
    prior: float = 1.0,
) -> dict[str, float]:
    """Bradley–Terry ratings of the models in `battles`, best first.

    Conventions (those of FastChat's `compute_mle_elo`, SCALE=400, BASE=10, INIT_RATING=1000):

    * Scale: P(i beats j) = 1 / (1 + 10 ** ((r_j - r_i) / scale)), so with scale=400 a gap of
      400 points means odds of 10:1, as in chess Elo. The rating is scale·θ + base with θ the
      strength in log10 units.
    * Ties: "tie" and "both_bad" count as half a win for each side (FastChat doubles wins and
      counts each tie once each way, which is the same thing).
    * Identifiability: only differences are identified; the mean rating is `base`, or, when
      `anchor` names a model, that model is placed at `base` instead.
    * Perfect records: when a model never lost (or never won) the maximum-likelihood estimate
      is infinite. `prior` is a weak prior against that: each model plays `prior` imaginary
      tied games against a fixed virtual opponent of strength 0, roughly the mean (prior/2
      wins and prior/2 losses; the ratings are recentred afterwards). With the default of
      1 game it moves ratings fitted from thousands of votes by well under a point (0.2 for
      5,000 votes among 6 models), while a 3–0 record gives a gap of about 400 points
      instead of infinity. `prior=0` is FastChat's plain MLE; it raises a `ValueError`
      when that does not exist (the graph of who beat whom is not strongly connected).

    Battles are first summed into a win matrix, then fitted by Newton's method with a
    backtracking line search on the (concave) log-likelihood: thousands of votes take
    milliseconds.
    """
    models, a, b, score = _index(battles)
    _check_fit_options(scale, prior, anchor, models)
    if not models:
        return {}
    wins = _win_matrix(len(models), a, b, score)
    ratings = _ratings(wins, models, scale=scale, base=base, anchor=anchor, prior=prior)
    return _best_first(models, ratings)


def bootstrap_intervals(
    battles: Iterable[Battle | tuple[str, str, str]],
    *,
    rounds: int = 100,
    confidence: float = 0.95,
    seed: int = 0,
    scale: float = 400.0,
    base: float = 1000.0,
    anchor: str | None = None,
    prior: float = 1.0,
    on_round: Callable[[int, int], None] | None = None,
) -> dict[str, Interval]:
    """Ratings with percentile bootstrap intervals, best first.

    The point rating is `fit_bradley_terry` on all battles (same conventions and options).
    Each of `rounds` rounds resamples the battles with replacement (as many as there are),
    refits, and recentres (mean at `base`, or `anchor` at `base`, whose interval is then a
    single point); low and high are the (1 - confidence)/2 and (1 + confidence)/2 percentiles
    of the refitted ratings. `on_round(done, total)` is called after each round. With `prior=0`
    a resample whose MLE does not exist raises `ValueError`.
    """
    # 1. Check the options and index the battles once.
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"`rounds` must be a positive integer, got {rounds!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be strictly between 0 and 1, got {confidence!r}.")
    models, a, b, score = _index(battles)
    _check_fit_options(scale, prior, anchor, models)
    if not models:
        return {}
    options = {"scale": scale, "base": base, "anchor": anchor, "prior": prior}
    point = _ratings(_win_matrix(len(models), a, b, score), models, **options)
    # 2. Resample: how often each battle is drawn is its weight in the win matrix.
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(models)))
    for k in range(rounds):
        drawn = np.bincount(rng.integers(0, len(a), len(a)), minlength=len(a))
        samples[k] = _ratings(_win_matrix(len(models), a, b, score, drawn), models, **options)
        if on_round is not None:
            on_round(k + 1, rounds)
    # 3. Percentile intervals.
    low, high = np.percentile(samples, [50 * (1 - confidence), 50 * (1 + confidence)], axis=0)
    column = {m: i for i, m in enumerate(models)}
    return {
        m: Interval(float(point[i]), float(low[i]), float(high[i]))
        for m, i in ((m, column[m]) for m in _best_first(models, point))
    }


def _index(battles: Iterable[Battle | tuple[str, str, str]]):
    """Models (sorted names) and, per battle, the index of each side and model_a's score."""
    checked = [x if isinstance(x, Battle) else Battle(*x) for x in battles]
    models = sorted({m for x in checked for m in (x.model_a, x.model_b)})
    position = {m: i for i, m in enumerate(models)}
    a = np.array([position[x.model_a] for x in checked], dtype=np.int64)
    b = np.array([position[x.model_b] for x in checked], dtype=np.int64)
    score = np.array([_SCORE_A[x.outcome] for x in checked], dtype=float)
    return models, a, b, score


def _check_fit_options(scale: float, prior: float, anchor: str | None, models: list[str]) -> None:
    if not scale > 0:
        raise ValueError(f"`scale` must be positive, got {scale!r}.")
    if not (prior >= 0 and math.isfinite(prior)):
        raise ValueError(f"`prior` must be a finite number >= 0, got {prior!r}.")
    if anchor is not None and models and anchor not in models:
        raise ValueError(f"`anchor` must be one of the rated models {models}, got {anchor!r}.")


def _win_matrix(n: int, a: np.ndarray, b: np.ndarray, score: np.ndarray, weight=None):
    """wins[i, j]: (weighted) wins of model i over model j, a tie counting half to each."""
    weight = np.ones(len(a)) if weight is None else weight
    wins = np.bincount(a * n + b, weights=score * weight, minlength=n * n)
    wins += np.bincount(b * n + a, weights=(1 - score) * weight, minlength=n * n)
    return wins.reshape(n, n)


def _ratings(wins, models, *, scale, base, anchor, prior) -> np.ndarray:
    """Fitted strengths (natural-log units) turned into ratings on the Elo-like scale."""
    if prior == 0 and not _strongly_connected(wins):
        raise ValueError(_no_mle_message(wins, models))
    ratings = _fit_strengths(wins, prior) * scale / math.log(10)
    centre = ratings[models.index(anchor)] if anchor is not None else ratings.mean()
    return ratings - centre + base


def _fit_strengths(wins: np.ndarray, prior: float, max_iter: int = 200) -> np.ndarray:
    """Maximise the log-likelihood by Newton steps (minimum-norm, so sum-to-zero when prior=0)."""
    beta = np.zeros(len(wins))
    for _ in range(max_iter):
        gradient, hessian = _derivatives(wins, beta, prior)
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        beta = _line_search(wins, beta, step, prior)
        if np.max(np.abs(step)) < 1e-9:
            return beta
    raise RuntimeError(f"Bradley–Terry fit did not converge in {max_iter} Newton steps.")


def _log_likelihood(wins: np.ndarray, beta: np.ndarray, prior: float) -> float:
    log_p = -np.logaddexp(0, -(beta[:, None] - beta[None, :]))  # log P(i beats j)
    pseudo = -np.logaddexp(0, -beta) - np.logaddexp(0, beta)  # one tie against strength 0
    return float(np.sum(wins * log_p) + prior / 2 * np.sum(pseudo))


def _derivatives(wins: np.ndarray, beta: np.ndarray, prior: float):
    """Gradient and negated Hessian of the log-likelihood."""
    games = wins + wins.T
    p = 1 / (1 + np.exp(-(beta[:, None] - beta[None, :])))
    s = 1 / (1 + np.exp(-beta))
    gradient = np.sum(wins - games * p, axis=1) + prior * (0.5 - s)
    weight = games * p * (1 - p)
    hessian = np.diag(weight.sum(axis=1) + prior * s * (1 - s)) - weight
    return gradient, hessian


def _line_search(wins: np.ndarray, beta: np.ndarray, step: np.ndarray, prior: float):
    """Halve the Newton step until the log-likelihood does not fall."""
    current = _log_likelihood(wins, beta, prior)
    tolerance = 1e-12 * (1 + abs(current))
    t = 1.0
    while t > 1e-8 and _log_likelihood(wins, beta + t * step, prior) < current - tolerance:
        t /= 2
    return beta + t * step


def _strongly_connected(wins: np.ndarray) -> bool:
    """Whether every model beat (or tied) its way to every other: the MLE exists iff so."""
    reach = ((wins > 0) | np.eye(len(wins), dtype=bool)).astype(float)
    for _ in range(max(1, math.ceil(math.log2(len(wins))))):
        reach = (reach @ reach > 0).astype(float)
    return bool(reach.all())


def _no_mle_message(wins: np.ndarray, models: list[str]) -> str:
    never_lost = [m for i, m in enumerate(models) if wins[:, i].sum() == 0]
    never_won = [m for i, m in enumerate(models) if wins[i, :].sum() == 0]
    detail = f"never lost: {never_lost}; never won: {never_won}"
    if not never_lost and not never_won:
        detail = "some groups of models never beat or tied the others"
    return f"The maximum-likelihood ratings are infinite with `prior=0` ({detail}); use prior > 0."


def _best_first(models: list[str], ratings: np.ndarray) -> dict[str, float]:
    order = sorted(range(len(models)), key=lambda i: (-ratings[i], models[i]))
    return {models[i]: float(ratings[i]) for i in order}


# ---------------------------------------------------------------------------------------------
# Checks on the votes


def position_bias(picks: Iterable[int], *, slots: int = 4, alpha: float = 0.01) -> PositionBias:
    """Do the positions win their fair share? A chi-square goodness-of-fit test against uniform.

    `picks` are the 1-based slots that won: for grid picks (`slots=4`) the slot of the image
    taken (U1–U4, slot 1 top-left), which beat the other three; for /rate votes (`slots=2`)
    1 for the left / first-shown image and 2 for the other, ties and "both bad" left out by
    the caller. Images are exchangeable across slots (shuffled, or a fresh seed per slot), so
    with no position bias each slot wins 1/slots of the time. `chi2` has slots − 1 degrees of
    freedom; `biased` is `p_value < alpha`. With no picks the rates are NaN and nothing is
    biased.
    """
    if not isinstance(slots, int) or slots < 2:
        raise ValueError(f"`slots` must be an integer >= 2, got {slots!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be strictly between 0 and 1, got {alpha!r}.")
    counts = Counter(_check_slot(pick, slots) for pick in picks)
    wins = tuple(counts[s] for s in range(1, slots + 1))
    n = sum(wins)
    if n == 0:
        return PositionBias(slots, 0, wins, (math.nan,) * slots, 0.0, 1.0, alpha, False)
    expected = n / slots
    chi2 = sum((w - expected) ** 2 for w in wins) / expected
    p_value = chi2_sf(chi2, slots - 1)
    rates = tuple(w / n for w in wins)
    return PositionBias(slots, n, wins, rates, chi2, p_value, alpha, p_value < alpha)


def _check_slot(pick: object, slots: int) -> int:
    if isinstance(pick, bool) or not isinstance(pick, int) or not 1 <= pick <= slots:
        raise ValueError(f"`picks` must hold slots from 1 to {slots}, got {pick!r}.")
    return pick


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for X chi-square with `df` (integer) degrees of freedom, in closed form.

    Even df: e^(−y) Σ_{k<df/2} y^k / k!; odd df: erfc(√y) + e^(−y) Σ_{k=1}^{(df−1)/2}
    y^(k−1/2) / Γ(k+1/2); with y = x/2.
    """
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"`df` must be a positive integer, got {df!r}.")
    if x <= 0:
        return 1.0
    y = x / 2
    if df % 2 == 0:
        logs = [k * math.log(y) - y - math.lgamma(k + 1) for k in range(df // 2)]
        return min(1.0, math.fsum(math.exp(t) for t in logs))
    logs = [(k - 0.5) * math.log(y) - y - math.lgamma(k + 0.5) for k in range(1, (df + 1) // 2)]
    return min(1.0, math.erfc(math.sqrt(y)) + math.fsum(math.exp(t) for t in logs))


def agreement(votes: Iterable[tuple[Hashable, Hashable, str]]) -> Agreement:
    """How often two members who voted on the same pair of images voted the same way.

    `votes` are (pair key, member, outcome). Outcomes must be stated in one fixed order of the
    pair (e.g. by image id), not by screen position, since /rate shuffles positions. A member's
    last vote on a pair counts. "tie" and "both_bad" agree with each other (neither says one
    image is better) and with nothing else. Over every pair with at least two voters, each two
    voters is one comparison; `rate` is the fraction of comparisons that agree (so a pair with
    more voters weighs more). NaN when there is no comparison.
    """
    # 1. Each member's last stance on each pair.
    stances: dict[Hashable, dict[Hashable, str]] = defaultdict(dict)
    for key, member, outcome in votes:
        _check_outcome(outcome)
        stances[key][member] = _STANCE[outcome]
    # 2. Compare every two voters of the same pair.
    crowded = [by_member for by_member in stances.values() if len(by_member) >= 2]
    same = [x == y for by_member in crowded for x, y in combinations(by_member.values(), 2)]
    rate = sum(same) / len(same) if same else math.nan
    return Agreement(rate, len(same), len(crowded))


def votes_per_day(timestamps: Iterable[datetime | date]) -> list[tuple[date, int]]:
    """(day, count) from the first to the last day with a vote, zero days included.

    Days are UTC: aware timestamps are converted to UTC; naive ones are taken as UTC already.
    """
    counts = Counter(_utc_day(t) for t in timestamps)
    if not counts:
        return []
    first, last = min(counts), max(counts)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    return [(day, counts[day]) for day in days]


def _utc_day(t: object) -> date:
    if isinstance(t, datetime):
        return (t.astimezone(UTC) if t.tzinfo is not None else t).date()
    if isinstance(t, date):
        return t
    raise ValueError(f"`timestamps` must hold datetimes or dates, got {t!r}.")
