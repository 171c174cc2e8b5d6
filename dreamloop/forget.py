"""`dreamloop forget MEMBER_ID`: what /forget-me does, for an admin or operator asked by
mail (bot/forget.py is the one code both run), then the recorded exports rewritten without
the member. The bot's posts in Discord stay: only the bot, connected, can delete those."""

from __future__ import annotations

import argparse
import asyncio
from types import SimpleNamespace

from rich.console import Console

from bot.forget import ForgetReport, forget_member
from dreamloop import services
from dreamloop.export_cleaning import clean_exports
from dreamloop.settings import Settings


def add_forget_parser(commands) -> None:
    forget = commands.add_parser("forget", help="delete everything held of one member, as "
                                 "/forget-me does, and rewrite the exports without them")
    forget.add_argument("member_id", type=_member_id, help="their Discord user id")
    forget.set_defaults(handler=run_forget)


def _member_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a Discord user id is a number such as "
                                         "123456789012345678")
    return int(text)


def run_forget(settings: Settings, args: argparse.Namespace, console: Console) -> int:
    report = asyncio.run(_forget(settings, args.member_id))
    print(f"member {args.member_id}: {report.summary()}")
    for cleaned in clean_exports(settings, console):
        print(f"rewrote {cleaned.folder}: {cleaned.rows_dropped} row(s) dropped")
    return 0


async def _forget(settings: Settings, member_id: int) -> ForgetReport:
    pool = await services.open_database_pool(settings)
    queue = services.job_queue(settings)
    try:
        held = SimpleNamespace(db=pool, queue=queue, blobs=services.blob_store(settings))
        return await forget_member(held, member_id, settings.export_salt)
    finally:
        await queue.redis.aclose()
        await pool.close()
