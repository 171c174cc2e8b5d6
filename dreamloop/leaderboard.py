"""`dreamloop leaderboard`: the model versions' ratings as a table (or JSON), read from the
database, with a progress bar over the bootstrap rounds."""

from __future__ import annotations

import json
import math

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from db.feedback import leaderboard_rows
from dreamloop.services import database_connection
from dreamloop.settings import Settings
from flywheel.leaderboard import SOURCE_NAMES, SOURCES, Leaderboard, build_leaderboard


async def read_leaderboard(settings: Settings, source: str, rounds: int,
                           console: Console) -> Leaderboard:
    async with database_connection(settings) as connection:
        rows = await leaderboard_rows(connection, SOURCES[source])
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("bootstrap rounds", total=rounds)
        return build_leaderboard(source, rows, rounds,
                                 on_round=lambda done, _: progress.update(task, completed=done))


def print_leaderboard(board: Leaderboard, as_json: bool) -> None:
    table = Table("#", "model version", "rating", "95% interval", "battles", "W", "L", "T",
                  title=f"dreamloop leaderboard ({board.source} {SOURCE_NAMES[board.source]})")
    for rank, s in enumerate(board.standings, start=1):
        table.add_row(str(rank), s.version, f"{s.rating:.0f}", f"{s.low:.0f} – {s.high:.0f}",
                      str(s.battles), str(s.wins), str(s.losses), str(s.ties))
    console = Console()
    console.print(table if board.standings else "No battles between model versions yet.")
    console.print(_checks(board))
    if as_json:
        print(json.dumps(_finite(board.to_dict())), flush=True)


def _checks(board: Leaderboard) -> str:
    picks = _bias(board.slot_win_rates, board.position_biased, board.position_p_value)
    votes = _bias(board.side_win_rates, board.side_biased, board.side_p_value)
    agreed = "–" if math.isnan(board.agreement) else f"{100 * board.agreement:.0f}%"
    return (f"U picks by grid slot 1-4: {picks}\n"
            f"/rate votes for A (left) and B (right): {votes}\n"
            f"members agree on the same pair {agreed} of the time")


def _bias(rates: tuple[float, ...], biased: bool, p_value: float) -> str:
    shares = " ".join(f"{100 * r:.0f}%" if not math.isnan(r) else "–" for r in rates)
    return f"{shares} ({'biased' if biased else 'no bias detected'}, p = {p_value:.3g})"


def _finite(value):
    """JSON has no NaN: unknown figures become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
