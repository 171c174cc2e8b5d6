"""The dreamloop bot: a discord.py Bot whose features live one per file."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from bot.buttons import BUTTONS
from bot.cancel import Cancel
from bot.click_guard import UnknownButtons
from bot.delivery import Delivery
from bot.errors import DreamloopTree
from bot.forget_me import Forget, ForgetButton
from bot.imagine import Imagine
from bot.info import Info
from bot.lanes import Lanes
from bot.leaderboard import LeaderboardCommand
from bot.mod import Mod
from bot.models import ModelsCommand
from bot.progress import ProgressRelay
from bot.rate import AnswerButton, Rate
from bot.reconciler import Reconciler
from bot.rules import Rules
from bot.services import BotServices
from bot.settings import Settings
from bot.show import Show
from bot.supervisor import supervise
from bot.uploads import UploadLimits

log = logging.getLogger(__name__)

# Every button rebuilt from its custom_id; the unknown-click answer must know them all.
DYNAMIC_ITEMS = (*BUTTONS, AnswerButton, ForgetButton)


async def sync_tree(tree: discord.app_commands.CommandTree, guild_id: int | None) -> list:
    """Register the slash commands globally or in one guild. Done deliberately, not at every
    start: Discord allows 200 command creates a day per guild."""
    guild = discord.Object(guild_id) if guild_id else None
    if guild:
        tree.copy_global_to(guild=guild)
    return await tree.sync(guild=guild)


class DreamloopBot(commands.Bot):
    def __init__(self, services: BotServices, deliver: bool = True,
                 sync_to: int | bool | None = False):
        """sync_to: False to leave the commands as they are, None to sync them globally,
        or a guild id to sync them there, once the bot has logged in."""
        # Prompts are echoed back: with mentions off, "@everyone" in a prompt pings nobody.
        super().__init__(command_prefix=commands.when_mentioned,
                         intents=discord.Intents.default(),
                         allowed_mentions=discord.AllowedMentions.none(),
                         tree_cls=DreamloopTree,  # every failed command is answered
                         http_trace=services.metrics.http_trace())  # Discord's refusals
        self.services, self.deliver, self.sync_to = services, deliver, sync_to
        self.progress = ProgressRelay(self)
        self.upload_limits = UploadLimits()  # each guild's, as its interactions say
        self.add_listener(self.upload_limits.learn, "on_interaction")
        # A click no button takes is answered, never left as "This interaction failed".
        self.add_listener(UnknownButtons(DYNAMIC_ITEMS).on_interaction,
                          "on_interaction")
        self._background: set[asyncio.Task] = set()

    async def setup_hook(self) -> None:
        # Buttons are rebuilt from their custom_id, so old messages work after a restart.
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for cog in (Imagine, Cancel, Info, Show, Settings, LeaderboardCommand, Rate,
                    ModelsCommand, Lanes, Rules, Mod, Forget):
            await self.add_cog(cog(self))
        if self.sync_to is not False:
            synced = await sync_tree(self.tree, self.sync_to)
            log.info("synced %d command(s): %s", len(synced), ", ".join(c.name for c in synced))
        if not self.deliver:
            return
        # Supervised: a Redis timeout or a PostgreSQL restart restarts a task, never ends it.
        for name, run in (("delivery", Delivery(self).run), ("progress relay", self.progress.run),
                          ("reconciler", Reconciler(self.services).run),
                          ("dispatcher", self.services.dispatcher.run)):
            task = asyncio.create_task(supervise(name, run))
            self._background.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s died", task.get_coro(), exc_info=task.exception())
