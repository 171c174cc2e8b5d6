"""/settings: a member's defaults for /imagine, and a server's rules (Manage Server only).

    /settings me model:sd15 aspect:3:2 lane:relax     your defaults (reset:True forgets them)
    /settings server default_model:sdxl allow_channel:#art    where /imagine works here
    /settings server max_queued:3 per_minute:5 lanes:relax    this server's member limits
    /settings server image_policy:spoiler    flagged images (bot/image_policy.py)

Discord hides a command from members without a default permission, but a server's admins
can change that in its settings; so the Manage Server check is made here, in our code.
"""

from __future__ import annotations

from dataclasses import dataclass

import discord
from discord import app_commands
from discord.ext import commands

from bot.admins import refused_unless_admin
from bot.errors import answer
from bot.guild_limits import LANE_SET_NAMES, LIMIT_KEYS, GuildLimitError, check_limit
from bot.image_policy import POLICIES
from bot.prompt import PromptError, parse_prompt
from db.members import get_settings, member_and_guild_settings, update_settings
from db.moderation_log import record_action
from generation.registry import UnknownModel

MEMBER_KEYS = ("model", "aspect", "lane")
GUILD_KEYS = ("default_model", "channels", *LIMIT_KEYS, "lanes", "image_policy")
IMAGE_POLICIES = [app_commands.Choice(name=policy, value=policy) for policy in POLICIES]
LANES = [app_commands.Choice(name=lane, value=lane) for lane in ("fast", "relax")]
LANE_SETS = [app_commands.Choice(name=name, value=value)
             for value, name in LANE_SET_NAMES.items()]


class SettingsError(ValueError):
    """A setting cannot be saved as given; the message says what is allowed."""


@dataclass(frozen=True)
class Defaults:
    """What /imagine takes from the member's and the server's settings."""

    member: dict
    guild: dict

    @property
    def model(self) -> str | None:
        return self.member.get("model") or self.guild.get("default_model")

    def allows(self, channel_id: int | None) -> bool:
        channels = self.guild.get("channels") or []
        return not channels or channel_id in channels

    def where_allowed(self) -> str:
        return ", ".join(f"<#{channel}>" for channel in self.guild.get("channels", []))


async def load_defaults(db, member_id: int, guild_id: int | None) -> Defaults:
    async with db.acquire() as conn:
        return Defaults(*await member_and_guild_settings(conn, member_id, guild_id))


def read_aspect(text: str) -> tuple[int, int]:
    """An aspect ratio as --ar reads it, with its message when it is wrong."""
    return parse_prompt(f"aspect --ar {text}").aspect


class Settings(commands.GroupCog, group_name="settings",
               group_description="Your defaults for /imagine, and this server's rules"):
    def __init__(self, bot):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="me")
    @app_commands.describe(model="the model your /imagine uses unless you name one",
                           aspect="your default aspect ratio, like 3:2",
                           lane="relax saves your fast GPU time for later",
                           reset="forget all your defaults")
    @app_commands.choices(lane=LANES)
    async def me(self, interaction: discord.Interaction, model: str | None = None,
                 aspect: str | None = None, lane: str | None = None,
                 reset: bool = False) -> None:
        """Your defaults for /imagine: model, aspect ratio and lane."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        try:
            changes = await self._member_changes(model, aspect, lane, reset)
        except (SettingsError, PromptError) as error:
            await answer(interaction, str(error))
            return
        saved = await self._save("member", interaction.user.id, changes)
        await answer(interaction, _describe("Your defaults", saved, MEMBER_KEYS))

    @app_commands.command(name="server")
    @app_commands.describe(default_model="the model /imagine uses here unless one is named",
                           allow_channel="let /imagine work in this channel (once any is "
                                         "listed, only the listed ones)",
                           remove_channel="take a channel off the list",
                           max_running="a member's jobs drawing at once here",
                           max_queued="a member's jobs waiting to start",
                           per_minute="jobs a member may start in a minute",
                           fast_gpu_seconds="a member's fast-lane GPU seconds a day "
                                            "(then relax)",
                           lanes="which lanes members may use here",
                           image_policy="flagged images: block, spoiler, or allow (unset: "
                                        "shown only in age-restricted channels)",
                           reset="forget this server's settings")
    @app_commands.choices(lanes=LANE_SETS, image_policy=IMAGE_POLICIES)
    async def server(self, interaction: discord.Interaction,
                     default_model: str | None = None,
                     allow_channel: discord.TextChannel | None = None,
                     remove_channel: discord.TextChannel | None = None,
                     max_running: int | None = None, max_queued: int | None = None,
                     per_minute: int | None = None, fast_gpu_seconds: int | None = None,
                     lanes: str | None = None, image_policy: str | None = None,
                     reset: bool = False) -> None:
        """This server's rules: where /imagine works, its model, limits, image policy."""
        await interaction.response.defer(ephemeral=True)  # Discord's 3 s, before the database
        if await refused_unless_admin(interaction, "change this server's settings",
                                      " /settings me sets your own defaults."):
            return
        limits = {"max_running": max_running, "max_queued": max_queued,
                  "per_minute": per_minute, "fast_gpu_seconds": fast_gpu_seconds}
        try:
            changes = await self._guild_changes(interaction.guild_id, default_model,
                                                allow_channel, remove_channel, reset)
            changes |= self._limit_changes(limits, lanes) if not reset else {}
            if image_policy is not None and not reset:  # logged with the rest by _save
                changes["image_policy"] = image_policy
        except (SettingsError, GuildLimitError) as error:
            await answer(interaction, str(error))
            return
        saved = await self._save("guild", interaction.guild_id, changes,
                                 actor_id=interaction.user.id)
        await answer(interaction, _describe("This server's settings", saved, GUILD_KEYS))

    async def _member_changes(self, model, aspect, lane, reset: bool) -> dict:
        if reset:
            return dict.fromkeys(MEMBER_KEYS)
        if model is not None:
            await self._check_model(model)
        if aspect is not None:
            read_aspect(aspect)
        return {key: value for key, value in
                (("model", model), ("aspect", aspect), ("lane", lane)) if value is not None}

    async def _guild_changes(self, guild_id: int, model, allow, remove, reset: bool) -> dict:
        if reset:
            return dict.fromkeys(GUILD_KEYS)
        changes = {}
        if model is not None:
            await self._check_model(model)
            changes["default_model"] = model
        if allow is not None or remove is not None:
            async with self.bot.services.db.acquire() as conn:
                channels = (await get_settings(conn, "guild", guild_id)).get("channels", [])
            listed = set(channels)
            if allow is not None:
                listed.add(allow.id)
            if remove is not None:
                listed.discard(remove.id)
            changes["channels"] = sorted(listed)
        return changes

    def _limit_changes(self, limits: dict, lanes: str | None) -> dict:
        """The member limits given, each within its range (GuildLimitError says which)."""
        changes = {key: check_limit(key, value, self.bot.services.limits)
                   for key, value in limits.items() if value is not None}
        return changes | ({"lanes": lanes} if lanes is not None else {})

    async def _check_model(self, name: str) -> None:
        """A known model that a worker serves now: a default nobody draws with would leave
        every /imagine waiting."""
        services = self.bot.services
        try:
            services.registry.get(name)
        except UnknownModel as error:
            raise SettingsError(str(error)) from None
        if await services.queue.is_served(name):
            return
        served = [known for known in sorted(services.registry.models)
                  if await services.queue.is_served(known)]
        raise SettingsError(
            f"Not saved: no worker serves the model {name!r} now, so /imagine would wait for "
            "one. " + (f"Served now: {', '.join(served)}." if served else
                       "No worker is running at all; start one (`dreamloop worker "
                       f"--model {name}`) first."))

    async def _save(self, who: str, snowflake: int, changes: dict,
                    actor_id: int | None = None) -> dict:
        """Save; a server's changes are written to its moderation log too."""
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            if not changes:
                return await get_settings(conn, who, snowflake)
            if who == "guild":
                await record_action(conn, snowflake, "settings_changed", actor_id=actor_id,
                                    detail={key: ("reset" if value is None else value)
                                            for key, value in changes.items()})
            return await update_settings(conn, who, snowflake, changes)


def _describe(title: str, settings: dict, keys: tuple[str, ...]) -> str:
    shown = [f"{key.replace('_', ' ')}: {_show(key, settings[key])}"
             for key in keys if settings.get(key) not in (None, "", [])]
    return f"{title}: " + ("; ".join(shown) if shown else "none set (the defaults apply).")


def _show(key: str, value) -> str:
    if key == "channels":
        return ", ".join(f"<#{channel}>" for channel in value)
    if key == "lanes":
        return LANE_SET_NAMES[value]
    return str(value)
