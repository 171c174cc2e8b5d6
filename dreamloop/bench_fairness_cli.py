"""The `dreamloop bench fairness` command line (its bench: dreamloop/bench_fairness.py)."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.table import Table


def add_parser(targets, positive) -> None:
    fairness = targets.add_parser(
        "fairness", help="light members' wait while others flood the queue: fifo against "
                         "the fair-share dispatcher, with 0, 1 and 2 flooders")
    fairness.add_argument("--model", default="tiny-random")
    fairness.add_argument("--flood-steps", type=positive(int), default=12)
    fairness.add_argument("--flood-jobs", type=positive(int), default=12,
                          help="each flooder's pile of jobs (default 12)")
    fairness.add_argument("--light-steps", type=positive(int), default=2)
    fairness.add_argument("--light-members", type=positive(int), default=2)
    fairness.add_argument("--light-jobs", type=positive(int), default=4,
                          help="each light member's jobs, one after another (default 4)")
    fairness.add_argument("--ahead", type=positive(int), default=1,
                          help="the dispatcher's jobs ahead per worker (default 1)")
    fairness.add_argument("--json", action="store_true", help="end with one line of JSON")
    fairness.set_defaults(handler=run)


def run(settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop.bench_fairness import Load, bench_fairness, describe
    from dreamloop.cli import _quiet_libraries
    from generation.engine import Engine
    from generation.registry import load_registry

    _quiet_libraries()
    registry = load_registry(settings.models_file, settings.data_dir)
    engine = Engine.load(registry.get(args.model))
    load = Load(args.flood_steps, args.flood_jobs, args.light_steps, args.light_members,
                args.light_jobs, args.ahead)
    console.print(describe(load), style="dim")
    figures = asyncio.run(bench_fairness(settings, registry, engine, load,
                                         lambda line: console.print(line, style="dim")))
    table = Table("figure", "value", title="dreamloop bench fairness")
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)
    if args.json:
        print(json.dumps(figures), flush=True)
    return 0
