"""Shared fixtures: one data folder and one tiny-random engine for the whole run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from generation.registry import load_registry, tiny_random_spec


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data folder shared by the session, so tiny-random is built once."""
    return tmp_path_factory.mktemp("dreamloop-data")


@pytest.fixture(scope="session")
def registry(data_dir):
    return load_registry(None, data_dir)


@pytest.fixture(scope="session")
def tiny_engine(data_dir):
    from generation.engine import Engine

    return Engine.load(tiny_random_spec(data_dir), device="cpu")


@pytest.fixture
def cli_env(data_dir) -> dict[str, str]:
    """Environment for running the dreamloop command in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DREAMLOOP_")}
    env["DREAMLOOP_DATA_DIR"] = str(data_dir)
    return env
