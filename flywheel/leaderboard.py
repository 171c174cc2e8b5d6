"""The leaderboard: model versions rated from battles, with the checks that say how far to
trust it (position bias of picks, agreement between members, votes per day). Pure: the
caller reads the rows (db/feedback.py) and shows the result (the CLI, /leaderboard)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date

from flywheel.ratings import Battle, agreement, bootstrap_intervals, position_bias, votes_per_day

# leaderboard source → the comparison sources it reads (votes and picks are never mixed
# silently), and the word a person reads for it
SOURCES = {"explicit": ["explicit"], "implicit": ["implicit_upscale"]}
SOURCE_NAMES = {"explicit": "votes", "implicit": "picks"}


@dataclass(frozen=True)
class Standing:
    version: str
    rating: float
    low: float  # 95% bootstrap interval
    high: float
    battles: int
    wins: int
    losses: int
    ties: int


@dataclass(frozen=True)
class Leaderboard:
    source: str  # explicit votes, or implicit picks
    standings: list[Standing]  # best first
    slot_win_rates: tuple[float, ...]  # U picks per grid slot (1-4)
    position_biased: bool
    position_p_value: float
    side_win_rates: tuple[float, ...]  # /rate votes for the left (A) and right (B) image
    side_biased: bool
    side_p_value: float
    agreement: float  # share of member pairs agreeing on the same image pair (NaN: none)
    votes_per_day: list[tuple[date, int]]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["votes_per_day"] = [(day.isoformat(), count) for day, count in self.votes_per_day]
        return data


def build_leaderboard(source: str, rows, rounds: int = 100,
                      on_round: Callable[[int, int], None] | None = None) -> Leaderboard:
    """Rate the versions in rows.battles (a, b, label), and report the position bias of U
    picks and of /rate votes, and the votes' agreement (rows: db.feedback.LeaderboardRows)."""
    # 1. ratings with 95% bootstrap intervals (ties and "both bad" count half)
    battles = rows.battles
    intervals = bootstrap_intervals([Battle(*b) for b in battles], rounds=rounds,
                                    on_round=on_round) if battles else {}
    records = _records(battles)
    standings = [Standing(version, i.rating, i.low, i.high, **records[version])
                 for version, i in intervals.items()]
    # 2. how far to trust them
    slots, sides = position_bias(rows.picked_slots, slots=4), position_bias(rows.voted_sides,
                                                                              slots=2)
    agreed = agreement([(pair, member, outcome) for pair, member, outcome, _ in rows.votes])
    days = votes_per_day([when for *_, when in rows.votes]) if rows.votes else []
    return Leaderboard(source, standings, slots.win_rates, slots.biased, slots.p_value,
                       sides.win_rates, sides.biased, sides.p_value, agreed.rate, days)


def _records(battles: Sequence[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for a, b, label in battles:
        for version, won in ((a, label == "a"), (b, label == "b")):
            tally = counts.setdefault(version, Counter())
            tally["battles"] += 1
            tally["wins" if won else "ties" if label in ("tie", "both_bad") else "losses"] += 1
    return {version: {key: tally[key] for key in ("battles", "wins", "losses", "ties")}
            for version, tally in counts.items()}

