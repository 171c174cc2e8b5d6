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
