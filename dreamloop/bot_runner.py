"""Running the Discord bot: `dreamloop bot` and `dreamloop sync-commands`."""

from __future__ import annotations

import asyncio

import discord
import yarl

from bot.client import DreamloopBot, sync_tree
from bot.limits import Limits
from bot.services import BotServices
from dreamloop import services
from dreamloop.settings import Settings, SettingsError
from generation.registry import load_registry

NO_TOKEN = ("dreamloop needs a Discord bot token: create an application at "
            "https://discord.com/developers/applications, add a bot, copy its token, and set "
            "DREAMLOOP_DISCORD_TOKEN to it. Invite the bot with the applications.commands and "
            "bot scopes.")


async def run_bot(settings: Settings, pools: list | None = None,
                  sync_to: int | bool | None = False) -> None:
    """Serve Discord until stopped: commands, buttons, delivery, reconciling; and the given
    sampling pools in this same process (`dreamloop run`). sync_to: see DreamloopBot."""
    bot = await _build(settings, deliver=True, sync_to=sync_to)
    stop = asyncio.Event()
    serving = [asyncio.create_task(pool.run(stop)) for pool in pools or []]
    try:
        async with bot:
            await bot.start(settings.discord_token)
    finally:
        stop.set()
        await asyncio.gather(*serving)


async def sync_commands(settings: Settings, guild_id: int | None) -> list[str]:
    """Register the slash commands once per deploy (Discord allows 200 creates a day per
    guild), globally or in one guild; returns their names."""
    bot = await _build(settings, deliver=False)
    async with bot:
        await bot.login(settings.discord_token)
        synced = await sync_tree(bot.tree, guild_id)
    return [command.name for command in synced]


async def _build(settings: Settings, deliver: bool,
                 sync_to: int | bool | None = False) -> DreamloopBot:
    if not settings.discord_token:
        raise SettingsError(NO_TOKEN)
    _point_discord_py(settings)
    bot_services = BotServices(
        registry=load_registry(settings.models_file, settings.data_dir),
        db=await services.open_database_pool(settings), queue=services.job_queue(settings),
        blobs=services.blob_store(settings), image_origins=settings.discord_cdn_origins,
        limits=Limits(max_running=settings.max_running, max_queued=settings.max_queued,
                      per_minute=settings.jobs_per_minute,
                      fast_gpu_seconds=settings.fast_gpu_seconds_per_day))
    return DreamloopBot(bot_services, deliver=deliver, sync_to=sync_to)


def _point_discord_py(settings: Settings) -> None:
    # discord.py's own knobs; set only for a proxy or a local Discord double.
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)
