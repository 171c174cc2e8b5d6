"""The bot's end-to-end stack: the real `dreamloop bot` process and a worker process on the
tiny model, pointed at the Discord double, real PostgreSQL and Redis. A pytest plugin
(see conftest.py), so every bot test file gets the `stack` fixture."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from db.connection import with_schema
from discord_double.rest import LOADING
from generation.blobs import LocalBlobStore
from tests.test_worker import Worker


class BotProcess:
    def __init__(self, env: dict[str, str], log: Path, *command: str):
        self.env, self.log, self.process = env, log, None
        self.command = command or ("bot",)

    def start(self) -> None:
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "dreamloop"), *self.command], env=self.env,
                stdout=sink, stderr=sink)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def stack_env(double, database_url, db_schema, redis_url, keys, cli_env, tmp_path) -> dict:
    return cli_env | {
        "DREAMLOOP_DISCORD_TOKEN": double.token, "DREAMLOOP_DISCORD_API_BASE": double.api_base,
        "DREAMLOOP_DISCORD_GATEWAY_URL": double.gateway_url,
        "DREAMLOOP_DATABASE_URL": with_schema(database_url, db_schema),
        "DREAMLOOP_REDIS_URL": redis_url, "DREAMLOOP_REDIS_PREFIX": keys.prefix,
        "DREAMLOOP_BLOB_URL": str(tmp_path / "blobs"), "DREAMLOOP_LEASE_MS": "3000",
        "DREAMLOOP_DISCORD_CDN_ORIGINS": json.dumps([f"http://127.0.0.1:{double.port}"]),
        # Room for a member's 3 jobs in a stream at once, so the end-to-end tests see the
        # concurrent cap; the dispatcher's order and ahead limit: tests/test_dispatch.py.
        "DREAMLOOP_DISPATCH_AHEAD": "4"}


async def sync_commands(double, env: dict) -> None:
    # An asyncio subprocess: the double answers on this event loop, which must keep running.
    sync = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "dreamloop"), "sync-commands", "--guild",
        str(double.guild_id), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(sync.communicate(), 120)
    assert sync.returncode == 0, err.decode()
    assert "synced 13 command(s)" in out.decode() and (
        "/imagine, /cancel, /info, /show, /settings, /leaderboard, /rate, /models, /fast, "
        "/relax, /rules, /mod, /forget-me"
        in out.decode())


@pytest.fixture
def stack_overrides() -> dict[str, str]:
    """Environment a test module lays over the stack's: override this fixture to point the
    stack at a Redis of its own, or at PostgreSQL through a proxy it can cut."""
    return {}


@pytest.fixture
async def stack(double, db, database_url, db_schema, redis_url, keys, cli_env, tmp_path,
                stack_overrides):
    """Sync the commands, then start a worker and the bot, all pointed at the double."""
    env = stack_env(double, database_url, db_schema, redis_url, keys, cli_env,
                    tmp_path) | stack_overrides
    await sync_commands(double, env)
    worker = Worker(env, tmp_path / "worker.log")
    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    await double.wait_until_connected(timeout=60)
    stack = Stack(bot, LocalBlobStore(tmp_path / "blobs"), [worker], env, tmp_path)
    yield stack
    stack.bot.kill()  # a test may have replaced the bot
    for worker in stack.workers:
        worker.stop()


@dataclass
class Stack:
    bot: BotProcess
    blobs: LocalBlobStore
    workers: list
    env: dict
    folder: Path


def is_grid(message) -> bool:
    return len(message.custom_ids()) == 9


async def reply_to(double, interaction) -> str:
    """The text of the bot's direct answer to an interaction (once deferred, the edit that
    replaces "thinking…")."""
    await double.wait_for_callback(interaction)

    def original():
        return double.messages[interaction.original_message_id]

    await double._until(lambda: not original().payload.get("flags", 0) & LOADING, 30,
                        "the interaction was never answered (still thinking…)")
    return original().content


async def told(double, member: str, text: str, channel: str = "general") -> None:
    """Wait until the bot has told the member (ephemerally) something containing text."""
    await double._until(lambda: any(text in m.content for m in double.channel_messages(
        channel, viewer=member)), 30, f"{member} was never told {text!r}")


async def serving(queue, model: str, timeout: float = 90) -> None:
    """Until a worker serves model (the stack's announces tiny-random once its pool is up)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await queue.is_served(model):
        assert asyncio.get_running_loop().time() < deadline, (
            f"no worker served {model} within {timeout} s")
        await asyncio.sleep(0.1)
