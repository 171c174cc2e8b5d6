"""A bot token Discord refuses (401) is one line on stderr and exit code 2, for every
command that logs in: not a traceback. The double answers a wrong token as Discord does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.bot_stack import stack_env

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("command", [("bot",), ("sync-commands",),
                                     ("run", "--model", "tiny-random")])
async def test_a_wrong_token_is_one_line_and_exit_code_2(double, db, database_url, db_schema,
                                                         redis_url, keys, cli_env, tmp_path,
                                                         command):
    env = stack_env(double, database_url, db_schema, redis_url, keys, cli_env, tmp_path)
    env["DREAMLOOP_DISCORD_TOKEN"] = "not-the-bot-token"
    # An asyncio subprocess: the double answers on this event loop, which must keep running.
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "dreamloop"), *command, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 240)
    lines = err.decode().strip().splitlines()
    assert process.returncode == 2, err.decode()
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("error: Discord refused the bot token (401 Unauthorized): "
                               "DREAMLOOP_DISCORD_TOKEN")


async def test_a_discord_out_of_reach_is_one_line_and_exit_code_2(cli_env, tmp_path):
    env = cli_env | {"DREAMLOOP_DISCORD_TOKEN": "a-token",
                     "DREAMLOOP_DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"}  # closed port
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "dreamloop"), "sync-commands", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 240)
    lines = err.decode().strip().splitlines()
    assert process.returncode == 2 and len(lines) == 1, err.decode()
    assert lines[0].startswith("error: Cannot reach Discord (") and lines[0].endswith(
        "check this machine's network connection and try again.")
