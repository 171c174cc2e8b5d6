"""Banned words end to end: the real bot against the Discord double, a worker on the tiny
model, real PostgreSQL and Redis. Refusals name the rule, never the word, create nothing and
are logged; /rules is for Manage Server admins only, checked by the bot itself."""

from __future__ import annotations

import json

import pytest

from db.moderation_log import recent_actions
from discord_double.double import EPHEMERAL
from discord_double.payloads import MANAGE_GUILD
from tests.bot_stack import is_grid, reply_to, told

pytestmark = pytest.mark.timeout(300)

REFUSED = "was refused by this server's rules: "
EXPLICIT = "explicit sexual content (dreamloop's default list)"
NOTHING = ". Nothing was queued."
# Each spelling trick the rules read past: (prompt, what the refusal calls the text).
EVASIONS = [
    ("a NUDE statue", "Your prompt"),
    ("a nüde statue", "Your prompt"),  # an accent
    ("a nu\u200bde statue", "Your prompt"),  # a zero-width space
    ("a nudе statue", "Your prompt"),  # a Cyrillic е
    ("a n4k3d statue", "Your prompt"),  # leetspeak
    ("a n u d e statue", "Your prompt"),  # spaced letters
    ("a statue of a {cat, nude}", "Your prompt"),  # a permutation: not even the cat is drawn
    ("a statue --no n.u.d.e", "Your negative prompt (--no)"),
]


async def job_count(db) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM jobs")


async def refusals(db, double) -> list:
    async with db.acquire() as conn:
        return await recent_actions(conn, double.guild_id, limit=100, action="prompt_refused")


async def imagine(double, member: str, prompt: str):
    return await double.slash(member, "general", "imagine", prompt=prompt, model="tiny-random")


async def test_evasions_are_refused_creating_nothing_and_logged_without_the_word(
        double, db, stack, redis_client, keys):
    for prompt, subject in EVASIONS:
        interaction = await imagine(double, "bob", prompt)
        assert await reply_to(double, interaction) == f"{subject} {REFUSED}{EXPLICIT}{NOTHING}"
        answer = double.messages[interaction.original_message_id].payload
        assert answer["flags"] & EPHEMERAL
    assert await job_count(db) == 0
    assert [key async for key in redis_client.scan_iter(match=f"{keys.prefix}jobs:*")] == []
    assert not any(m.content.startswith("**") for m in double.channel_messages("general"))

    logged = await refusals(db, double)
    assert len(logged) == len(EVASIONS)
    assert {(e.actor_id, e.target_id) for e in logged} == {(None, double.user_id("bob"))}
    assert [e.detail["checked"] for e in reversed(logged)] == ["prompt"] * 7 + [
        "negative_prompt"]
    assert {e.detail["rule"] for e in logged} == {EXPLICIT}
    details = json.dumps([e.detail for e in logged]).lower()
    assert "nud" not in details and "n4k" not in details

    # A banned word inside another word is no banned word: the prompt is drawn.
    await imagine(double, "bob", "a classic Scunthorpe skyline at dusk")
    await double.wait_for_message("general", lambda m: "Scunthorpe skyline" in m.content)
    await told(double, "bob", "Queued as job")
    assert await job_count(db) == 1


SHOWN = "`spider*` (creepy crawlies)"  # how /rules shows the rule to admins
ADMIN_ONLY = [("rules add", {"pattern": "spider*"}), ("rules remove", {"rule": 1}),
              ("rules list", {}), ("rules defaults", {"state": "off"}),
              ("rules check", {"prompt": "a spider"})]


async def test_rules_need_manage_server_even_where_the_guild_exposes_them(double, db, stack):
    [rules] = [c for c in double.commands[double.guild_id] if c["name"] == "rules"]
    assert int(rules["default_member_permissions"]) == MANAGE_GUILD  # Discord's default
    for command, options in ADMIN_ONLY:  # the double lets bob use it: the bot refuses him
        refused = await double.slash("bob", "general", command, **options)
        assert await reply_to(double, refused) == (
            "Only members with the Manage Server permission can see or change this server's "
            "rules.")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM moderation_rules") == 0
        assert await conn.fetchval("SELECT count(*) FROM guilds WHERE settings <> '{}'") == 0
        refusals = await recent_actions(conn, double.guild_id)
    # Each refusal is in the moderation log, for the admins to see who tried what.
    assert sorted((e.action, e.target_id, e.detail["command"]) for e in refusals) == sorted(
        ("refused_not_an_admin", double.user_id("bob"), f"/{command}")
        for command, _ in ADMIN_ONLY)


async def test_admins_add_check_list_and_remove_rules_and_turn_the_defaults_off(double, db,
                                                                                stack):
    await imagine(double, "bob", "a spider web at dawn")  # drawn before the rule exists
    grid = await double.wait_for_message("general", is_grid, timeout=120)

    bad = await double.slash("alice", "general", "rules add", pattern="sp[i]der")
    assert (await reply_to(double, bad)).startswith(
        "Not added: `[` (U+005B) cannot be in an entry: use letters, digits, spaces, hyphens")
    added = await double.slash("alice", "general", "rules add", pattern="spider*",
                               rule_name="creepy crawlies")
    reply = await reply_to(double, added)
    async with db.acquire() as conn:
        rule_id = await conn.fetchval("SELECT id FROM moderation_rules")
    label = f"creepy crawlies (this server's rule #{rule_id})"
    assert reply == (
        f"Added rule #{rule_id}: {SHOWN}. A refused member is told \"{label}\".")
    again = await double.slash("alice", "general", "rules add", pattern="spider*")
    assert await reply_to(double, again) == f"Not added: rule #{rule_id} bans that already."

    refused = await imagine(double, "bob", "two giant SP1DERS")
    assert await reply_to(double, refused) == f"Your prompt {REFUSED}{label}{NOTHING}"
    # 🔄 on the grid drawn before: the server's rules now refuse its prompt
    await double.click("bob", grid, grid.custom_ids()[4])
    await told(double, "bob", f"This job's prompt {REFUSED}{label}{NOTHING}")
    assert await job_count(db) == 1

    checked = await double.slash("alice", "general", "rules check", prompt="giant s p i d e r")
    assert await reply_to(double, checked) == f"Refused by {label} (read as: giant spider)."
    listed = await double.slash("alice", "general", "rules list")
    listing = await reply_to(double, listed)
    assert listing.startswith("Dreamloop's default list: on (explicit sexual content, graphic "
                              "violence, hate speech, sexual content involving minors;")
    assert f"#{rule_id} {SHOWN}, added by <@{double.user_id('alice')}>" in listing

    off = await double.slash("alice", "general", "rules defaults", state="off")
    assert "is now off here" in await reply_to(double, off)
    await imagine(double, "bob", "a nude marble statue")  # the default list is off here
    await double.wait_for_message("general", lambda m: "a nude marble statue" in m.content)
    removed = await double.slash("alice", "general", "rules remove", rule=rule_id)
    assert await reply_to(double, removed) == f"Removed rule #{rule_id}: {SHOWN}."
    await imagine(double, "bob", "two giant spiders")
    await double.wait_for_message("general", lambda m: "two giant spiders" in m.content)
    assert await job_count(db) == 3

    async with db.acquire() as conn:
        log = list(reversed(await recent_actions(conn, double.guild_id)))
    assert [(e.action, e.actor_id) for e in log] == [
        ("rule_added", double.user_id("alice")), ("prompt_refused", None),
        ("prompt_refused", None), ("default_rules_off", double.user_id("alice")),
        ("rule_removed", double.user_id("alice"))]
    assert all("spider" not in json.dumps(e.detail) for e in log)
    assert log[1].detail == {"rule": label, "rule_id": rule_id, "checked": "prompt"}
