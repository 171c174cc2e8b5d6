"""The `dreamloop` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bot.prompt import PromptError
from db.connection import DatabaseUnavailable
from db.exports import DEFAULT_SOURCES, SOURCES
from dreamloop.forget import add_forget_parser
from dreamloop.settings import Settings, SettingsError, load_settings
from generation.contract import InvalidRequest
from generation.images import GRID_FORMATS
from generation.keys import LANES
from generation.registry import ModelLoadError, RegistryError, load_registry


class OutputError(ValueError):
    """The output path cannot be written as asked."""


# Errors a person caused and can fix: shown as one line, never as a traceback.
USER_ERRORS = (SettingsError, PromptError, InvalidRequest, RegistryError, ModelLoadError,
               OutputError, DatabaseUnavailable)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.handler(load_settings(), args, console)
    except USER_ERRORS as error:
        # soft_wrap: one line, however narrow the terminal, so logs and scripts see it whole.
        console.print(f"[bold red]error:[/] {error}", highlight=False, markup=True,
                      soft_wrap=True)
        return 2


def _positive(kind: type):
    """An argparse type: a number above zero, or a clear error naming what was given."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} is not above zero")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamloop", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    imagine = commands.add_parser("imagine", help="draw a prompt to a grid file, no Discord")
    imagine.add_argument("prompt", help='the prompt with any --flags, e.g. "a red fox --ar 3:2"')
    imagine.add_argument("--model", help="a model name from the registry (default: its default)")
    imagine.add_argument("--out", type=Path, required=True,
                         help="grid file (.webp, .jpg, .png); full images go beside it")
    imagine.set_defaults(handler=_run_imagine)

    worker = commands.add_parser("worker", help="serve queued jobs on this machine's GPU (or CPU)")
    worker.add_argument("--model", action="append",
                        help="a model to serve; repeat for several (default: the registry's)")
    worker.add_argument("--lane", action="append", choices=LANES,
                        help="a lane to serve; repeat for several (default: turbo, fast and relax)")
    worker.add_argument("--grace", type=_positive(float), default=30.0,
                        help="seconds to finish the batch in hand after SIGTERM (default 30)")
    worker.set_defaults(handler=_run_worker)

    run = commands.add_parser("run", help="everything on this machine: the bot, delivery, the "
                              "reconciler and a worker per GPU (or one on the CPU)")
    run.add_argument("--model", action="append",
                     help="a model for the local workers; repeat for several (default: the "
                     "registry's)")
    _sync_options(run)
    run.set_defaults(handler=_run_all)

    bot = commands.add_parser("bot", help="run the Discord bot (commands, buttons, delivery)")
    _sync_options(bot)
    bot.set_defaults(handler=_run_bot)
    sync = commands.add_parser("sync-commands",
                               help="register the slash commands with Discord (once per deploy)")
    sync.add_argument("--guild", type=int, help="register in one guild (instant) instead of "
                      "globally")
    sync.set_defaults(handler=_run_sync_commands)

    board = commands.add_parser("leaderboard", help="the model versions' ratings (Bradley-"
                                "Terry, 95%% bootstrap intervals) with position bias and agreement")
    board.add_argument("--source", choices=("explicit", "implicit"), default="explicit",
                       help="members' votes (default) or the pairs their U picks imply")
    board.add_argument("--rounds", type=_positive(int), default=100, help="bootstrap rounds")
    board.add_argument("--json", action="store_true", help="end with one line of JSON")
    board.set_defaults(handler=_run_leaderboard)
    _export_parser(commands)
    add_forget_parser(commands)

    models = commands.add_parser("models", help="model versions and their A/B traffic weights")
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    add = actions.add_parser("add", help="a version served under a registry model")
    add.add_argument("name")
    add.add_argument("--model", required=True, help="the registry model workers serve it as")
    add.add_argument("--source", help="its weights (hub id or path; default: the model's)")
    weight = actions.add_parser("weight", help="set a version's traffic weight (0: none)")
    weight.add_argument("name")
    weight.add_argument("weight", type=_at_least_zero)
    models.set_defaults(handler=_run_models)

    migrate = commands.add_parser("migrate", help="apply the database migrations not yet applied")
    migrate.set_defaults(handler=_run_migrate)

    bench = commands.add_parser("bench", help="benchmarks that print figures and ratios")
    targets = bench.add_subparsers(required=True, metavar="TARGET")
    engine = targets.add_parser("engine", help="engine vs plain diffusers; image encoding")
    engine.add_argument("--model", default="tiny-random")
    engine.add_argument("--repeats", type=_positive(int), default=5)
    engine.add_argument("--json", action="store_true", help="end with one line of JSON")
    engine.set_defaults(handler=_run_bench_engine)
    pool = targets.add_parser("pool", help="jobs through queue + pool vs direct engine calls")
    pool.add_argument("--model", default="tiny-random")
    pool.add_argument("--jobs", type=_positive(int), default=16)
    pool.add_argument("--max-batch", type=_positive(int), default=4,
                      help="jobs per pipeline call")
    pool.add_argument("--json", action="store_true", help="end with one line of JSON")
    pool.set_defaults(handler=_run_bench_pool)
    db = targets.add_parser("db", help="job lifecycles per second, 1 and 16 writers")
    db.add_argument("--seconds", type=_positive(float), default=3.0,
                    help="length of each timed run")
    db.add_argument("--json", action="store_true", help="end with one line of JSON")
    db.set_defaults(handler=_run_bench_db)
    bot_bench = targets.add_parser("bot", help="the bot's latency against the Discord double: "
                                   "acknowledgement, queued message, delivery")
    bot_bench.add_argument("--members", type=_positive(int), default=50,
                           help="members firing /imagine at once (1 is measured too)")
    bot_bench.add_argument("--rounds", type=_positive(int), default=5)
    bot_bench.add_argument("--results", type=_positive(int), default=20,
                           help="results delivered, one at a time")
    bot_bench.add_argument("--json", action="store_true", help="end with one line of JSON")
    bot_bench.set_defaults(handler=_run_bench_bot)
    from dreamloop.bench_fairness_cli import add_parser as add_fairness_bench

    add_fairness_bench(targets, _positive)
    return parser


def _run_imagine(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    grid_format = args.out.suffix.lower().lstrip(".")
    if grid_format not in GRID_FORMATS:
        raise OutputError(f"--out is {str(args.out)!r}: the grid file must end in "
                          f"{', '.join('.' + f for f in GRID_FORMATS)}")
    _quiet_libraries()
    from dreamloop.imagine import JobFailed, imagine  # loads torch: only when needed

    try:
        imagine(settings, args.prompt, args.model, args.out, grid_format, console)
    except JobFailed as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 1
    return 0



def _run_worker(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from dreamloop.serve import serve_worker

    asyncio.run(serve_worker(settings, args.model, tuple(args.lane or LANES), args.grace,
                             prepare=_quiet_libraries))
    return 0


def _sync_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sync-commands", action="store_true",
                        help="register the slash commands first (the first start, and after "
                        "an upgrade that changes them)")
    parser.add_argument("--guild", type=int, help="with --sync-commands: register them in one "
                        "guild (instant) instead of globally")


def _sync_to(args: argparse.Namespace) -> int | bool | None:
    return args.guild if args.sync_commands else False


def _run_all(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    import discord

    from dreamloop.bot_runner import check_token
    from dreamloop.serve import serve_all
    from dreamloop.services import migrate_database

    asyncio.run(check_token(settings))  # before minutes of model loading
    discord.utils.setup_logging()
    for name in asyncio.run(migrate_database(settings)):
        console.print(f"database: applied {name}")
    asyncio.run(serve_all(settings, args.model, _sync_to(args), prepare=_quiet_libraries))
    return 0


def _run_bot(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    import discord

    from dreamloop.bot_runner import check_token
    from dreamloop.serve import serve_bot

    asyncio.run(check_token(settings))
    discord.utils.setup_logging()
    asyncio.run(serve_bot(settings, _sync_to(args)))
    return 0


def _run_sync_commands(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop.bot_runner import sync_commands

    names = asyncio.run(sync_commands(settings, args.guild))
    where = f"guild {args.guild}" if args.guild else "all guilds (global)"
    print(f"synced {len(names)} command(s) for {where}: {', '.join('/' + n for n in names)}")
    return 0


def _run_leaderboard(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop.leaderboard import print_leaderboard, read_leaderboard

    board = asyncio.run(read_leaderboard(settings, args.source, args.rounds, console))
    print_leaderboard(board, args.json)
    return 0


def _export_parser(commands) -> None:
    export = commands.add_parser("export", help="the preference data as files: Pick-a-Pic v2 "
                                 "parquet, KTO-style labels or arena battles")
    export.add_argument("--format", dest="fmt", required=True,
                        choices=("pickapic", "kto", "battles"),
                        help="pickapic: pairs as Pick-a-Pic v2 parquet splits; kto: per-image "
                        "likes and dislikes; battles: FastChat arena JSON")
    export.add_argument("--out", type=Path, required=True, help="the folder to write into")
    export.add_argument("--since", type=_iso_date, help="only data from then on (ISO date or "
                        "time, UTC unless it says otherwise)")
    export.add_argument("--sources", type=_sources, default=DEFAULT_SOURCES,
                        help="pickapic and battles: which pairs, of " + ",".join(SOURCES)
                        + " (default: " + ",".join(DEFAULT_SOURCES) + ")")
    export.add_argument("--include-unreliable", action="store_true",
                        help="pickapic and battles: keep the votes of members who failed their "
                        "/rate control pairs (left out by default)")
    export.set_defaults(handler=_run_export)


def _iso_date(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date such as 2026-05-01"
                                         ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _sources(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or not set(names) <= set(SOURCES):
        raise argparse.ArgumentTypeError(f"{text!r}: name one or more of {', '.join(SOURCES)}"
                                         ", separated by commas")
    return names


def _run_export(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop.export_cleaning import clean_exports
    from dreamloop.exports import export, export_salt, print_summary
    from generation.blobs import BlobNotFound

    if args.out.exists() and not args.out.is_dir():
        raise OutputError(f"--out is {str(args.out)!r}: that is a file; name a folder")
    export_salt(settings)  # a missing salt is said before anything is read or written
    for cleaned in clean_exports(settings, console):  # first: they may hold forgotten members
        print(f"rewrote {cleaned.folder}: {cleaned.rows_dropped} row(s) dropped")
    try:
        written = export(settings, args.fmt, args.out, args.sources, args.since, console,
                         include_unreliable=args.include_unreliable)
    except BlobNotFound as error:
        console.print(f"[bold red]error:[/] {error}: the export stopped", highlight=False)
        return 1
    print_summary(written)
    return 0


def _run_models(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop import models

    given = {key: getattr(args, key, None) for key in ("name", "model", "source", "weight")}
    models.print_versions(asyncio.run(models.run_models(settings, args.action, **given)))
    return 0


def _at_least_zero(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of at least 0")
    return value


def _run_migrate(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from db.migrate import shipped_migrations
    from dreamloop.services import migrate_database

    applied = asyncio.run(migrate_database(settings))
    for name in applied:
        print(f"applied {name}")
    print(_migrate_verdict(len(applied), len(shipped_migrations())))
    return 0


def _migrate_verdict(applied: int, total: int) -> str:
    if applied == 0:
        verdict = "nothing is missing"
    elif applied == total:
        verdict = "created the schema"
    else:
        verdict = f"applied {applied} new migration(s)"
    return f"{verdict}: the database is at migration {total} of {total}"


def _run_bench_engine(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    _quiet_libraries()
    from generation.bench import bench_engine

    spec = load_registry(settings.models_file, settings.data_dir).get(args.model)
    figures = bench_engine(spec, args.repeats, lambda line: console.print(line, style="dim"))
    _print_figures(f"dreamloop bench engine ({spec.name})", figures, args.json)
    return 0


def _print_figures(title: str, figures: dict, as_json: bool) -> None:
    table = Table("figure", "value", title=title)
    for key, value in figures.items():
        table.add_row(key, str(value))
    Console().print(table)
    if as_json:
        print(json.dumps(figures), flush=True)


def _quiet_libraries() -> None:
    """Our own progress bars replace the libraries' loading bars and chatter."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def _run_bench_db(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from db.bench import bench_db
    from dreamloop.services import database_url

    url = database_url(settings)
    figures = asyncio.run(bench_db(url, args.seconds, lambda line: console.print(line,
                                                                                style="dim")))
    _print_figures("dreamloop bench db", figures, args.json)
    return 0


def _run_bench_pool(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    _quiet_libraries()
    from dreamloop import services
    from generation.bench_pool import bench_pool
    from generation.engine import Engine

    engine = Engine.load(load_registry(settings.models_file, settings.data_dir).get(args.model))
    figures = asyncio.run(bench_pool(engine, services.redis_url(settings), args.jobs,
                                     args.max_batch,
                                     lambda line: console.print(line, style="dim")))
    _print_figures(f"dreamloop bench pool ({args.model})", figures, args.json)
    return 0


def _run_bench_bot(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    from dreamloop.bench_bot import BenchFailed, Sizes, bench_bot

    sizes = Sizes(members=args.members, rounds=args.rounds, results=args.results)
    try:
        figures = asyncio.run(bench_bot(settings, sizes,
                                        lambda line: console.print(line, style="dim")))
    except BenchFailed as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        return 1
    _print_figures("dreamloop bench bot", figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
