"""Settings: built once at start-up from DREAMLOOP_* environment variables, then passed down."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, PositiveInt, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.image_prompt import DISCORD_CDN


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "dreamloop"


class SettingsError(Exception):
    """A setting is missing or wrong; the message is a sentence a person can act on."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DREAMLOOP_", frozen=True, extra="ignore")

    # models, images and embedded servers live here
    data_dir: Path = Field(default_factory=default_data_dir)
    models_file: Path | None = None  # registry TOML; None means the shipped models.toml
    database_url: str | None = None  # None: an embedded PostgreSQL under data_dir
    database_pool_size: int = Field(default=10, ge=1, le=100)  # connections per process
    database_acquire_timeout_s: float = Field(default=10.0, gt=0)  # then "unreachable"
    discord_token: str | None = None  # the bot's token (Developer Portal → Bot → Reset Token)
    # Where discord.py talks to Discord; set only for a proxy or a local Discord double.
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    # Image prompts are fetched only from these (JSON list); a double's own for tests.
    discord_cdn_origins: tuple[str, ...] = DISCORD_CDN
    # Model versions' traffic weights are shared by every server the bot is in: the guild ids
    # (JSON list) whose Manage Server members may set them with /models weight. Empty: only
    # while the bot is in exactly one guild (a hobbyist's own server).
    admin_guilds: Annotated[tuple[PositiveInt, ...], NoDecode] = ()
    redis_url: str | None = None  # None: an embedded Redis under data_dir
    redis_prefix: str = "dreamloop:"  # every key starts with it (generation/keys.py)
    blob_url: str | None = None  # a folder, file:// or s3://bucket/prefix; None: data_dir/blobs
    lease_ms: int = Field(default=30_000, ge=100)  # a silent worker loses its jobs after this
    max_deliveries: int = Field(default=3, ge=1)  # then a job goes to the dead-letter stream
    max_batch: int = Field(default=4, ge=1, le=64)  # jobs per pipeline call
    coalesce_ms: int = Field(default=0, ge=0, le=1000)  # wait for batch-mates (small models)
    relax_max_wait_s: float = Field(default=120.0, ge=0)  # then relax jobs go before fast
    max_running: int = Field(default=3, ge=1)  # a member's jobs on the GPUs at once
    max_queued: int = Field(default=10, ge=1)  # a member's jobs waiting to start
    jobs_per_minute: int = Field(default=10, ge=1)  # a member's jobs started in any minute
    fast_gpu_seconds_per_day: float = Field(default=900.0, ge=0)  # then the relax lane
    # A bot restarted within 10 minutes of connecting waits this, doubling each time up to
    # 10 minutes, so a crash loop stays far under Discord's 1,000 IDENTIFYs a day.
    restart_backoff_s: float = Field(default=5.0, gt=0, le=600)
    # Jobs kept in a stream per worker serving it; the rest wait in PostgreSQL, so the bot
    # decides their order (fair share, bot/dispatcher.py) at the last moment.
    dispatch_ahead: int = Field(default=1, ge=1)
    # Where /metrics, /livez and /readyz are served (dreamloop/health.py); 0: not served.
    # Unset: 9100 for `dreamloop bot` and `dreamloop run`, 9101 for `dreamloop worker`.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Which classifier flags nude images for the servers' image policy: nudenet or none
    # (generation/safety.py; README "Image safety").
    image_classifier: str = "nudenet"
    # The secret salt for hashing member ids in exports (dreamloop export); never exported.
    export_salt: str | None = None

    @field_validator("models_file")
    @classmethod
    def _models_file_exists(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"there is no file at {path}")
        return path

    @field_validator("image_classifier")
    @classmethod
    def _known_classifier(cls, name: str) -> str:
        from generation.safety import check_classifier_name  # numpy and Pillow, no torch

        return check_classifier_name(name)

    @field_validator("admin_guilds", mode="before")
    @classmethod
    def _guild_ids(cls, value):
        # Read here (NoDecode), so a value that is not a JSON list gets a sentence, not
        # pydantic-settings' "error parsing value"; an empty value means none.
        if not isinstance(value, str):
            return value
        try:
            ids = json.loads(value) if value.strip() else []
        except json.JSONDecodeError:
            ids = None
        if not isinstance(ids, list):
            raise ValueError(f"{value!r} is not a JSON list of guild ids, like "
                             f"[123456789012345678]")
        return ids


def load_settings() -> Settings:
    """Read the environment once; a bad value stops start-up with a plain sentence."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(_describe(e) for e in error.errors())
        raise SettingsError(f"dreamloop cannot start: {problems}") from None


def _describe(error: dict) -> str:
    name = "DREAMLOOP_" + "_".join(map(str, error["loc"])).upper()
    return f"{name}: {error['msg'].removeprefix('Value error, ')}"
