"""A server's rules applied to what members type: every prompt and negative prompt of an
/imagine (each permutation), and the prompt of the work a button starts (🔄, V, Vary,
Upscale: a server's rules may have changed since the job was made).

A refusal names the rule, never the word, and goes to the moderation log as prompt_refused
(with the rule's label, never the word). In a DM dreamloop's default list applies, and there
is no server log to write to.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import discord
from discord.utils import escape_markdown

from bot.moderation import DEFAULT_RULES, Rule, RuleSet
from db.moderation_log import record_action
from db.moderation_rules import ModerationRule, default_rules_on, guild_rules


class PromptRefused(Exception):
    """A prompt breaks one of the server's rules; the message names the rule."""


@dataclass(frozen=True)
class Checked:
    """A text to check: what it is (a word for the log), how a refusal calls it, the text."""

    part: str
    subject: str
    text: str


def prompt_texts(prompts: Iterable) -> list[Checked]:
    """The member's own words in parsed prompts: the text and the --no items (not the
    model's default negative prompt, which the operator wrote)."""
    texts = []
    for parsed in prompts:
        texts.append(Checked("prompt", "Your prompt", parsed.text))
        if parsed.negative:
            texts.append(Checked("negative_prompt", "Your negative prompt (--no)",
                                 ", ".join(parsed.negative)))
    return list(dict.fromkeys(texts))


def server_label(rule: ModerationRule) -> str:
    where = f"this server's rule #{rule.id}"
    return f"{rule.name} ({where})" if rule.name else where


@functools.lru_cache(maxsize=256)
def _server_rule_set(rules: tuple[Rule, ...]) -> RuleSet:
    return RuleSet(rules)  # compiled once per version of a server's list


async def rules_for(conn: asyncpg.Connection, guild_id: int | None) -> list[RuleSet]:
    """The rule sets that apply in a server (None: a DM, where the default list does)."""
    if guild_id is None:
        return [DEFAULT_RULES]
    own = tuple(Rule(rule.pattern, server_label(rule), rule.id)
                for rule in await guild_rules(conn, guild_id))
    sets = [_server_rule_set(own)]
    return [DEFAULT_RULES, *sets] if await default_rules_on(conn, guild_id) else sets


def first_broken(rule_sets: list[RuleSet], text: str) -> Rule | None:
    return next((rule for rules in rule_sets if (rule := rules.first_match(text))), None)


async def refuse_banned_words(db: asyncpg.Pool, interaction: discord.Interaction,
                        texts: list[Checked]) -> None:
    """PromptRefused when any text breaks a rule, after logging the refusal."""
    async with db.acquire() as conn:
        rule_sets = await rules_for(conn, interaction.guild_id)
        for checked in texts:
            rule = first_broken(rule_sets, checked.text)
            if rule is not None:
                await _log(conn, interaction, checked, rule)
                raise PromptRefused(refusal(checked.subject, rule, interaction.guild_id))


def refusal(subject: str, rule: Rule, guild_id: int | None) -> str:
    rules = "this server's rules" if guild_id is not None else "dreamloop's default rules"
    return (f"{subject} was refused by {rules}: {escape_markdown(rule.label)}. Nothing was "
            "queued.")


async def _log(conn: asyncpg.Connection, interaction: discord.Interaction, checked: Checked,
               rule: Rule) -> None:
    if interaction.guild_id is None:
        return
    # The detail names the rule, never the word (moderation must be explainable, and the
    # log is read by admins who need not see every member's words).
    await record_action(conn, interaction.guild_id, "prompt_refused",
                        target_id=interaction.user.id,
                        detail={"rule": rule.label, "rule_id": rule.rule_id,
                                "checked": checked.part})
