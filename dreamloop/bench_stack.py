"""What `dreamloop bench bot` runs against: the Discord double in this process, the real bot
as its own process pointed at it, on throwaway servers (dreamloop/throwaway.py).

Processes are asyncio subprocesses: the double answers them on this event loop, which must
keep running while they work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from db.connection import connect
from discord_double import DiscordDouble
from dreamloop import throwaway
from dreamloop.settings import Settings
from generation.blobs import LocalBlobStore
from generation.keys import Keys

NO_LIMIT = "1000000"  # the members' caps, lifted: their queries still run, none refuses
WAIT_S = 120.0  # for any one step, before the bench gives up
POLL_S = 0.02  # the double stamps what it receives: polling only notices it


class BenchFailed(Exception):
    """The bench could not measure: the bot did not start, or an answer never came."""


@dataclass
class Stack:
    double: DiscordDouble
    env: dict[str, str]  # for the dreamloop processes
    db: asyncpg.Connection  # on the bench's schema
    redis: object
    keys: Keys
    blobs: LocalBlobStore
    folder: Path
    imagined: int = 0  # /imagine commands the bot has been sent


@contextlib.asynccontextmanager
async def open_stack(settings: Settings, folder: Path, members: list[str]
                     ) -> AsyncIterator[Stack]:
    """The double (with these members besides its own) and throwaway servers; no bot yet."""
    keys = Keys(f"dreamloop-bench-bot:{uuid.uuid4().hex[:12]}:")
    async with contextlib.AsyncExitStack() as exits:
        database = await exits.enter_async_context(
            throwaway.database(settings, folder, "bench_bot"))
        redis_url, client = await exits.enter_async_context(
            throwaway.redis(settings, folder, keys.prefix))
        double = await exits.enter_async_context(_double(members))
        db = await connect(database)
        exits.push_async_callback(db.close)
        env = _env(settings, double, database, redis_url, keys, folder)
        yield Stack(double, env, db, client, keys, LocalBlobStore(folder / "blobs"), folder)


@contextlib.asynccontextmanager
async def _double(members: list[str]) -> AsyncIterator[DiscordDouble]:
    double = DiscordDouble()
    for name in members:
        double.add_member(name)
    await double.start()
    try:
        yield double
    finally:
        await double.stop()


def _env(settings: Settings, double: DiscordDouble, database: str, redis_url: str, keys: Keys,
         folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOP_")}
    models = {"DREAMLOOP_MODELS_FILE": str(settings.models_file)} if settings.models_file else {}
    return env | models | {
        "DREAMLOOP_DISCORD_TOKEN": double.token, "DREAMLOOP_DISCORD_API_BASE": double.api_base,
        "DREAMLOOP_DISCORD_GATEWAY_URL": double.gateway_url, "DREAMLOOP_DATABASE_URL": database,
        "DREAMLOOP_DATABASE_POOL_SIZE": str(settings.database_pool_size),
        "DREAMLOOP_REDIS_URL": redis_url, "DREAMLOOP_REDIS_PREFIX": keys.prefix,
        "DREAMLOOP_BLOB_URL": str(folder / "blobs"), "DREAMLOOP_DATA_DIR": str(folder / "data"),
        "DREAMLOOP_MAX_QUEUED": NO_LIMIT, "DREAMLOOP_MAX_RUNNING": NO_LIMIT,
        "DREAMLOOP_JOBS_PER_MINUTE": NO_LIMIT}


async def run_dreamloop(env: dict[str, str], *args: str) -> str:
    """Run a dreamloop command to its end; its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dreamloop.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), WAIT_S)
    if process.returncode != 0:
        raise BenchFailed(f"dreamloop {' '.join(args)} failed: {err.decode()[-2000:]}")
    return out.decode()


@contextlib.asynccontextmanager
async def running_bot(stack: Stack) -> AsyncIterator[None]:
    """`dreamloop bot`, from its connection to the double until the block ends."""
    log = stack.folder / "bot.log"
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dreamloop.cli", "bot", env=stack.env, stdout=sink,
            stderr=sink)
    try:
        await until(lambda: process.returncode is not None or connected(stack.double),
                    "connection of the bot")
        if process.returncode is not None:
            raise BenchFailed(f"the bot exited ({process.returncode}): {log.read_text()[-2000:]}")
        yield
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after WAIT_S: a bot stuck in its shutdown must not hang the
    bench, nor outlive it holding the bench's Redis keys."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), WAIT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise BenchFailed(f"the bot did not stop within {WAIT_S} s of SIGTERM") from None


def connected(double: DiscordDouble) -> bool:
    return any(s.identified and s.socket is not None for s in double.sessions)


async def until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise BenchFailed(f"no {what} within {WAIT_S:.0f} s")
        await asyncio.sleep(POLL_S)
