"""Settings from DREAMLOOP_* environment variables, and the sentence a bad one gives."""

from __future__ import annotations

import os
import re

import pytest
from pydantic import ValidationError

from dreamloop.settings import Settings, SettingsError, default_data_dir, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No DREAMLOOP_* variable from the caller's shell, and a home of our own."""
    for name in list(os.environ):
        if name.startswith("DREAMLOOP_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_data_dir_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMLOOP_DATA_DIR", str(tmp_path / "data"))
    assert load_settings().data_dir == tmp_path / "data"


def test_models_file_is_none_when_unset():
    assert load_settings().models_file is None


def test_models_file_is_read_when_it_exists(monkeypatch, tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("")
    monkeypatch.setenv("DREAMLOOP_MODELS_FILE", str(path))
    assert load_settings().models_file == path


@pytest.mark.parametrize("name", ["missing.toml", "a-folder"])
def test_a_models_file_that_is_not_there_stops_start_up(monkeypatch, tmp_path, name):
    (tmp_path / "a-folder").mkdir()
    path = tmp_path / name
    monkeypatch.setenv("DREAMLOOP_MODELS_FILE", str(path))
    message = f"dreamloop cannot start: DREAMLOOP_MODELS_FILE: there is no file at {path}"
    with pytest.raises(SettingsError, match=f"^{re.escape(message)}$"):
        load_settings()


def test_default_data_dir_uses_xdg_data_home_when_set(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "dreamloop"


@pytest.mark.parametrize("xdg", [None, ""])
def test_default_data_dir_falls_back_to_local_share(monkeypatch, tmp_path, xdg):
    if xdg is not None:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "dreamloop"


def test_settings_data_dir_default_follows_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_settings().data_dir == tmp_path / "xdg" / "dreamloop"


def test_settings_are_frozen(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMLOOP_DATA_DIR", str(tmp_path))
    settings = load_settings()
    with pytest.raises(ValidationError, match="Instance is frozen"):
        settings.data_dir = tmp_path / "elsewhere"
    assert settings.data_dir == tmp_path


def test_unrelated_dreamloop_variables_are_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("DREAMLOOP_NOT_A_SETTING", "x")
    monkeypatch.setenv("DREAMLOOP_DATA_DIR", str(tmp_path))
    assert isinstance(load_settings(), Settings)


def test_a_pool_size_out_of_range_stops_start_up(monkeypatch):
    monkeypatch.setenv("DREAMLOOP_DATABASE_POOL_SIZE", "0")
    with pytest.raises(SettingsError, match="DREAMLOOP_DATABASE_POOL_SIZE: Input should be "
                                            "greater than or equal to 1"):
        load_settings()


async def test_the_pool_is_built_from_the_settings(monkeypatch, database_url):
    from dreamloop.services import open_database_pool

    monkeypatch.setenv("DREAMLOOP_DATABASE_URL", database_url)
    monkeypatch.setenv("DREAMLOOP_DATABASE_POOL_SIZE", "3")
    pool = await open_database_pool(load_settings())
    try:
        assert pool.get_max_size() == 3
        assert await pool.fetchval("SELECT '{\"a\": [1]}'::jsonb") == {"a": [1]}
    finally:
        await pool.close()


@pytest.mark.parametrize(("value", "guilds"), [
    (None, ()), ("", ()), ("[]", ()), ('[123456789012345678, "42"]', (123456789012345678, 42))])
def test_admin_guilds_are_a_json_list_of_ids(monkeypatch, value, guilds):
    if value is not None:
        monkeypatch.setenv("DREAMLOOP_ADMIN_GUILDS", value)
    assert load_settings().admin_guilds == guilds


@pytest.mark.parametrize(("value", "message"), [
    ("123", "DREAMLOOP_ADMIN_GUILDS: '123' is not a JSON list of guild ids, like "
            "[123456789012345678]"),
    ("1,2", "DREAMLOOP_ADMIN_GUILDS: '1,2' is not a JSON list of guild ids"),
    ("[0]", "DREAMLOOP_ADMIN_GUILDS_0: Input should be greater than 0"),
])
def test_admin_guilds_that_are_not_ids_stop_start_up(monkeypatch, value, message):
    monkeypatch.setenv("DREAMLOOP_ADMIN_GUILDS", value)
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings()
