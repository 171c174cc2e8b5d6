"""The README's promises that CI depends on."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_the_readme_test_command_unchanged():
    test_command = next(c for c in readme_commands() if c.endswith("pytest"))
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert any(line.startswith("pip install") and "torch==2" in line
               for line in ci_lines[:ci_lines.index(test_command)])


def test_readme_main_command_is_dreamloop_run_on_the_offline_model():
    run_command = next(c for c in readme_commands() if "dreamloop run" in c)
    assert run_command.startswith("python3 -m venv") and "--model tiny-random" in run_command


def test_quick_start_names_the_bots_permissions_and_their_integer():
    import discord

    start = (ROOT / "README.md").read_text().split("Run the tests")[0]
    for name in ("Send Messages", "Attach Files", "Embed Links"):
        assert f"**{name}**" in start
    wanted = discord.Permissions(send_messages=True, attach_files=True, embed_links=True)
    [integer] = set(re.findall(r"permissions=(\d+)", start))
    assert int(integer) == wanted.value
    assert "scope=bot+applications.commands" in start
    assert "--guild YOUR_SERVER_ID" in start  # instant command sync in one server
