"""Running the Discord bot: `dreamloop bot` and `dreamloop sync-commands`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

import aiohttp
import discord
import yarl

from bot.client import DreamloopBot, sync_tree
from bot.limits import Limits
from bot.metrics import BotMetrics, not_ready
from bot.services import BotServices
from dreamloop import services
from dreamloop.health import Health
from dreamloop.settings import Settings, SettingsError
from dreamloop.start_backoff import wait_before_connecting
from generation.registry import load_registry

NO_TOKEN = ("dreamloop needs a Discord bot token: create an application at "
            "https://discord.com/developers/applications, add a bot, copy its token, and set "
            "DREAMLOOP_DISCORD_TOKEN to it. Invite the bot with the applications.commands and "
            "bot scopes.")
WRONG_TOKEN = ("Discord refused the bot token (401 Unauthorized): DREAMLOOP_DISCORD_TOKEN is "
               "not a bot's current token (a typo, or it was reset); copy it again from your "
               "application's Bot page at https://discord.com/developers/applications.")


async def run_bot(settings: Settings, health: Health, pools: list | None = None,
                  sync_to: int | bool | None = False, default_model: str | None = None) -> None:
    """Serve Discord until stopped: commands, buttons, delivery, reconciling; and the given
    sampling pools in this same process (`dreamloop run`). sync_to: see DreamloopBot.
    default_model: the model of jobs nobody chose one for, instead of the registry's (for
    `dreamloop run --model M`, whose workers serve M). health: what the process's endpoint
    serves (dreamloop/health.py); the bot's metrics join its registry and its readiness
    joins the checks already there (the pools')."""
    bot = await _build(settings, deliver=True, sync_to=sync_to, default_model=default_model,
                       metrics=BotMetrics(health.registry))
    _watch(health, bot)
    stop = asyncio.Event()
    serving = [asyncio.create_task(pool.run(stop)) for pool in pools or []]
    # SIGTERM (docker stop, systemd) ends like Ctrl-C: the bot logs out, the pools finish the
    # batch in hand, and the process exits normally, so embedded servers are stopped too.
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: asyncio.ensure_future(bot.close()))
    try:
        queue = bot.services.queue
        await wait_before_connecting(queue.redis, queue.keys.bot_starts,
                                     settings.restart_backoff_s)
        async with bot, _token_checked():
            await bot.start(settings.discord_token)
    finally:
        stop.set()
        await asyncio.gather(*serving)
        health.live = False


def _watch(health: Health, bot: DreamloopBot) -> None:
    health.checks.append(lambda: not_ready(bot))
    health.before_scrape = lambda: bot.services.metrics.refresh(bot.services)


async def check_token(settings: Settings) -> None:
    """Log in once and out again, before logging is set up and models are loaded: a token
    Discord refuses is then one sentence, at once, not a traceback minutes later."""
    if not settings.discord_token:
        raise SettingsError(NO_TOKEN)
    _point_discord_py(settings)
    async with discord.Client(intents=discord.Intents.none()) as client, _token_checked():
        await client.login(settings.discord_token)


async def sync_commands(settings: Settings, guild_id: int | None) -> list[str]:
    """Register the slash commands once per deploy (Discord allows 200 creates a day per
    guild), globally or in one guild; returns their names."""
    bot = await _build(settings, deliver=False)
    async with bot:
        async with _token_checked():
            await bot.login(settings.discord_token)
        synced = await sync_tree(bot.tree, guild_id)
    return [command.name for command in synced]


@contextlib.asynccontextmanager
async def _token_checked():
    """A token Discord refuses, or a Discord this machine cannot reach, is the person's to
    fix: one sentence, not a traceback."""
    try:
        yield
    except discord.LoginFailure:
        raise SettingsError(WRONG_TOKEN) from None
    except aiohttp.ClientConnectionError as error:  # no network, DNS, a firewall
        raise SettingsError(f"Cannot reach Discord ({error}); check this machine's network "
                            "connection and try again.") from None


async def _build(settings: Settings, deliver: bool, sync_to: int | bool | None = False,
                 default_model: str | None = None,
                 metrics: BotMetrics | None = None) -> DreamloopBot:
    if not settings.discord_token:
        raise SettingsError(NO_TOKEN)
    _point_discord_py(settings)
    registry = load_registry(settings.models_file, settings.data_dir)
    if default_model is not None:
        registry = dataclasses.replace(registry, default=registry.get(default_model).name)
    bot_services = BotServices(
        registry=registry,
        db=await services.open_database_pool(settings), queue=services.job_queue(settings),
        blobs=services.blob_store(settings), image_origins=settings.discord_cdn_origins,
        admin_guilds=settings.admin_guilds, dispatch_ahead=settings.dispatch_ahead,
        export_salt=settings.export_salt,
        limits=Limits(max_running=settings.max_running, max_queued=settings.max_queued,
                      per_minute=settings.jobs_per_minute,
                      fast_gpu_seconds=settings.fast_gpu_seconds_per_day),
        metrics=metrics or BotMetrics())
    return DreamloopBot(bot_services, deliver=deliver, sync_to=sync_to)


def _point_discord_py(settings: Settings) -> None:
    # dreamloop never joins voice: no warnings that its libraries are missing.
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
    # discord.py's own knobs; set only for a proxy or a local Discord double.
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
