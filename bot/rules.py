"""/rules: a server's banned words and patterns (Manage Server only; the matching rule is in
bot/moderation.py).

    /rules add pattern:nud* rule_name:nudity     ban a word, a phrase or a pattern with *
    /rules remove rule:3                      take rule #3 off
    /rules list                               this server's rules (only you see them)
    /rules defaults on|off                    dreamloop's default list here, or not
    /rules check prompt:…                     which rule would refuse a prompt

Every change is written to the moderation log. Discord's default permission hides the
commands from members without Manage Server, but a server's admins can expose them, so the
check is made again here, in our code.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.admins import refused_unless_admin
from bot.errors import answer
from bot.moderation import (
    DEFAULT_RULES,
    DEFAULT_SOURCE,
    MAX_RULES,
    PatternError,
    check_name,
    check_pattern,
    normalise,
)
from bot.rule_check import first_broken, rules_for, server_label
from db.members import update_settings
from db.moderation_log import record_action
from db.moderation_rules import (
    ModerationRule,
    add_rule,
    count_rules,
    default_rules_on,
    find_pattern,
    guild_rules,
    remove_rule,
)

SWITCH = [app_commands.Choice(name=state, value=state) for state in ("on", "off")]
MESSAGE_LIMIT = 2000  # Discord refuses longer messages


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Rules(commands.GroupCog, group_name="rules",
            group_description="This server's banned words and patterns (Manage Server only)"):
    def __init__(self, bot):
        self.bot = bot
        super().__init__()

    @app_commands.command(name="add")
    @app_commands.describe(pattern="a word or phrase; * stands for any letters in a word, "
                                   "like nud*",
                           rule_name="what a refused member is told the rule is about "
                                     "(never the word itself), like 'creepy crawlies'")
    async def add(self, interaction: discord.Interaction, pattern: str,
                  rule_name: str | None = None) -> None:
        """Ban a word, phrase or pattern in prompts on this server."""
        if not await _admin(interaction):
            return
        try:
            pattern, name = check_pattern(pattern), check_name(rule_name)
        except PatternError as error:
            await answer(interaction, f"Not added: {error}")
            return
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            text = await self._add(conn, interaction, pattern, name)
        await answer(interaction, text)

    async def _add(self, conn, interaction: discord.Interaction, pattern: str,
                   name: str | None) -> str:
        guild_id = interaction.guild_id
        if await count_rules(conn, guild_id) >= MAX_RULES:
            return (f"Not added: this server has {MAX_RULES} rules, the most it may have; "
                    "remove one first (/rules list shows them).")
        rule = await add_rule(conn, guild_id, pattern, name, interaction.user.id)
        if rule is None:
            existing = await find_pattern(conn, guild_id, pattern)
            return f"Not added: rule #{existing.id} bans that already."
        await record_action(conn, guild_id, "rule_added", actor_id=interaction.user.id,
                            detail={"rule_id": rule.id, "name": rule.name})
        return (f"Added rule #{rule.id}: {_shown(rule)}. A refused member is told "
                f"\"{escape_markdown(server_label(rule))}\".")

    @app_commands.command(name="remove")
    @app_commands.describe(rule="the rule's number (see /rules list)")
    async def remove(self, interaction: discord.Interaction,
                     rule: app_commands.Range[int, 1, None]) -> None:
        """Take one of this server's rules off."""
        if not await _admin(interaction):
            return
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            removed = await remove_rule(conn, interaction.guild_id, rule)
            if removed is not None:
                await record_action(conn, interaction.guild_id, "rule_removed",
                                    actor_id=interaction.user.id,
                                    detail={"rule_id": removed.id, "name": removed.name})
        if removed is None:
            await answer(interaction, f"This server has no rule #{rule}; /rules list shows "
                                      "its rules.")
            return
        await answer(interaction, f"Removed rule #{removed.id}: {_shown(removed)}.")

    @app_commands.command(name="list")
    async def list_rules(self, interaction: discord.Interaction) -> None:
        """This server's banned words and patterns (only you see them)."""
        if not await _admin(interaction):
            return
        async with self.bot.services.db.acquire() as conn:
            rules = await guild_rules(conn, interaction.guild_id)
            defaults = await default_rules_on(conn, interaction.guild_id)
        await answer(interaction, _listing(rules, defaults))

    @app_commands.command(name="defaults")
    @app_commands.describe(state="on: dreamloop's default list applies here too; off: only "
                                 "this server's rules")
    @app_commands.choices(state=SWITCH)
    async def defaults(self, interaction: discord.Interaction, state: str) -> None:
        """Turn dreamloop's default list of banned words on or off here."""
        if not await _admin(interaction):
            return
        if state not in ("on", "off"):  # Discord keeps to the choices; a raw payload may not
            await answer(interaction, f"{state!r} is not a state: use on or off.")
            return
        async with self.bot.services.db.acquire() as conn, conn.transaction():
            await update_settings(conn, "guild", interaction.guild_id,
                                  {"default_rules": None if state == "on" else False})
            await record_action(conn, interaction.guild_id, f"default_rules_{state}",
                                actor_id=interaction.user.id)
        await answer(interaction, f"{DEFAULT_SOURCE.capitalize()} is now {state} here; "
                                  "this server's own rules apply either way.")

    @app_commands.command(name="check")
    @app_commands.describe(prompt="a prompt to test against this server's rules")
    async def check(self, interaction: discord.Interaction, prompt: str) -> None:
        """Which rule, if any, would refuse a prompt here (nothing is drawn)."""
        if not await _admin(interaction):
            return
        async with self.bot.services.db.acquire() as conn:
            rule = first_broken(await rules_for(conn, interaction.guild_id), prompt)
        read = escape_markdown(normalise(prompt))[:MESSAGE_LIMIT // 2]
        if rule is None:
            await answer(interaction, f"Allowed: no rule refuses it (read as: {read}).")
            return
        await answer(interaction, f"Refused by {escape_markdown(rule.label)} (read as: {read}).")


async def _admin(interaction: discord.Interaction) -> bool:
    """Acknowledge within Discord's 3 s, then refuse a member without Manage Server, whatever
    Discord's permissions let through (a server's admins can expose any command)."""
    await interaction.response.defer(ephemeral=True)
    return not await refused_unless_admin(interaction, "see or change this server's rules")


def _shown(rule: ModerationRule) -> str:
    named = f" ({escape_markdown(rule.name)})" if rule.name else ""
    return f"`{rule.pattern}`{named}"


def _listing(rules: list[ModerationRule], defaults: bool) -> str:
    names = sorted({rule.label.removesuffix(f" ({DEFAULT_SOURCE})")
                    for rule in DEFAULT_RULES.rules})
    lines = [f"{DEFAULT_SOURCE.capitalize()}: {'on' if defaults else 'off'} "
             f"({', '.join(names)}; /rules check tests a prompt)."]
    if not rules:
        return lines[0] + "\nThis server has no rules of its own; /rules add bans a word."
    lines.append(f"This server's rules ({len(rules)}):")
    for shown, rule in enumerate(rules):
        line = (f"#{rule.id} {_shown(rule)}, added by <@{rule.created_by}> "
                f"{discord.utils.format_dt(rule.created_at, 'd')}")
        if sum(len(kept) + 1 for kept in lines) + len(line) > MESSAGE_LIMIT - 30:
            lines.append(f"… and {len(rules) - shown} more.")
            break
        lines.append(line)
    return "\n".join(lines)
