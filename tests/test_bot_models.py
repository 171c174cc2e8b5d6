"""/models: anyone sees the model versions and their traffic; only Manage Server members of an
admin guild set weights, and a weight routing cannot honour is refused, as the CLI refuses it."""

from __future__ import annotations

import json
import math

import pytest

from bot.services import (
    WeightRefused,
    check_traffic_weight,
    weights_refusal,
)
from db.model_versions import ModelVersion, ensure_model_version
from flywheel.routing import traffic_shares
from generation.queue import JobQueue
from tests.bot_stack import BotProcess, reply_to, serving, stack_env, sync_commands

pytestmark = pytest.mark.timeout(300)

EPHEMERAL = 1 << 6


# -- the rules, without Discord ------------------------------------------------------------

@pytest.mark.parametrize(("guild", "admin_guilds", "guilds", "allowed"), [
    (10, (), 1, True),  # a hobbyist's own server
    (10, (), 2, False),  # two servers share the weights: the operator must name one
    (10, (10, 20), 5, True),
    (30, (10, 20), 1, False),  # once listed, only the listed ones, even alone
])
def test_weights_are_set_only_from_an_admin_guild(guild, admin_guilds, guilds, allowed):
    refusal = weights_refusal(guild, admin_guilds, guilds)
    assert (refusal is None) == allowed
    if not allowed:
        assert "DREAMLOOP_ADMIN_GUILDS" in refusal and str(guild) in refusal


def version(name: str, weight: float) -> ModelVersion:
    return ModelVersion(id=1, name=name, model="m", source="s", traffic_weight=weight)


def test_shares_count_only_the_served_versions():
    rows = [(version("a", 3), True), (version("b", 1), True), (version("c", 4), False),
            (version("d", 0), True)]
    assert traffic_shares(rows) == [0.75, 0.25, 0.0, 0.0]
    assert traffic_shares([(version("a", 0), True)]) == [0.0]


async def test_the_weight_check_names_what_is_wrong(db, redis_client, keys):
    queue = JobQueue(redis_client, keys)
    async with db.acquire() as conn:
        await ensure_model_version(conn, "tiny@dpo-1", "tiny-random", "s")
        for bad in (-1.0, math.nan, math.inf):
            with pytest.raises(WeightRefused, match="is not a traffic weight: use a number of "
                                                    "at least 0"):
                await check_traffic_weight(conn, queue, "tiny@dpo-1", bad)
        with pytest.raises(WeightRefused, match=r"^there is no model version 'nope' \(the "
                                                r"versions: 'tiny@dpo-1'\)"):
            await check_traffic_weight(conn, queue, "nope", 1)
        with pytest.raises(WeightRefused, match="no worker serves 'tiny-random' \\(the model "
                                                "of 'tiny@dpo-1'\\) now"):
            await check_traffic_weight(conn, queue, "tiny@dpo-1", 1)
        assert (await check_traffic_weight(conn, queue, "tiny@dpo-1", 0)).name == "tiny@dpo-1"
        await queue.announce("worker-1", ["tiny-random"])
        assert (await check_traffic_weight(conn, queue, "tiny@dpo-1", 2.5)).model == (
            "tiny-random")


# -- end to end, against the Discord double --------------------------------------------------

async def weights(db) -> dict[str, float]:
    async with db.acquire() as conn:
        return {r["name"]: r["traffic_weight"]
                for r in await conn.fetch("SELECT name, traffic_weight FROM model_versions")}


async def embed_of(double, interaction) -> str:
    await double.wait_for_callback(interaction)
    message = double.messages[interaction.original_message_id]
    assert message.payload["flags"] & EPHEMERAL
    return message.payload["embeds"][0]["description"]


async def type_into(double, member: str, name: str, option: str, typed: str):
    """Type into option of the subcommand name ("models weight"): double.autocomplete
    types into top-level options only, so the payload is built here as Discord sends it."""
    top, sub = name.split(" ")
    command = double._synced_command(top)
    focused = {"name": option, "type": 3, "value": typed, "focused": True}
    data = {"id": command["id"], "name": top, "type": 1,
            "options": [{"name": sub, "type": 1, "options": [focused]}]}
    return await double._interact(member, "general", 4, data)


async def test_manage_server_members_set_weights_that_routing_can_honour(
        double, db, stack, redis_client, keys):
    async with db.acquire() as conn:
        await ensure_model_version(conn, "tiny@dpo-1", "tiny-random", "s")
        await ensure_model_version(conn, "sdxl@base", "sdxl", "s")  # no worker serves sdxl
    await serving(JobQueue(redis_client, keys, lease_ms=int(stack.env["DREAMLOOP_LEASE_MS"])),
                  "tiny-random")

    refused = await double.slash("bob", "general", "models weight", version="tiny@dpo-1",
                                 weight=2.0)
    assert "Only members with the Manage Server permission" in await reply_to(double, refused)
    assert await weights(db) == {"tiny@dpo-1": 0, "sdxl@base": 0}

    done = await double.slash("alice", "general", "models weight", version="tiny@dpo-1",
                              weight=2.0)
    assert await reply_to(double, done) == "**tiny@dpo-1** now has traffic weight 2 (was 0)."
    assert await weights(db) == {"tiny@dpo-1": 2, "sdxl@base": 0}

    for options, why in [
        ({"version": "nope", "weight": 1.0},
         "Not set: there is no model version 'nope' (the versions: 'tiny@dpo-1', 'sdxl@base')"),
        ({"version": "sdxl@base", "weight": 1.0},
         "Not set: no worker serves 'sdxl' (the model of 'sdxl@base') now"),
        ({"version": "tiny@dpo-1", "weight": -1.0},  # past Discord's min_value, as a request may
         "The weight option is -1: it must be at least 0."),  # bot/raw_options.py
    ]:
        bad = await double.slash("alice", "general", "models weight", **options)
        assert why in await reply_to(double, bad)
    assert await weights(db) == {"tiny@dpo-1": 2, "sdxl@base": 0}

    listed = await double.slash("bob", "general", "models list")
    assert (await embed_of(double, listed)).splitlines() == [
        "**tiny@dpo-1** (tiny-random) — weight 2, 100% of traffic now, served",
        "**sdxl@base** (sdxl) — weight 0, 0% of traffic now, not served"]

    typed = await type_into(double, "alice", "models weight", "version", "DPO")
    await double.wait_for_callback(typed)
    assert typed.callback_type == 8
    assert [c["value"] for c in typed.callbacks[0][1]["data"]["choices"]] == ["tiny@dpo-1"]


async def test_outside_the_admin_guilds_weights_are_refused(double, db, database_url,
                                                            db_schema, redis_url, keys,
                                                            cli_env, tmp_path):
    async with db.acquire() as conn:
        await ensure_model_version(conn, "tiny@dpo-1", "tiny-random", "s")
    env = stack_env(double, database_url, db_schema, redis_url, keys, cli_env, tmp_path)
    env["DREAMLOOP_ADMIN_GUILDS"] = json.dumps([double.guild_id + 1])
    await sync_commands(double, env)
    bot = BotProcess(env, tmp_path / "bot.log")
    bot.start()
    try:
        await double.wait_until_connected(timeout=60)
        refused = await double.slash("alice", "general", "models weight", version="tiny@dpo-1",
                                     weight=0.0)
        assert await reply_to(double, refused) == (
            f"Traffic weights are shared by every server the bot is in, so only the servers "
            f"listed in DREAMLOOP_ADMIN_GUILDS may set them, and this one ({double.guild_id}) "
            f"is not listed.")
    finally:
        bot.kill()
