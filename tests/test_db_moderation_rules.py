"""A server's rules in PostgreSQL (migration 0007): one server's never apply in another,
a DM gets the default list, and a server can turn the default list off."""

from __future__ import annotations

from bot.rule_check import first_broken, rules_for
from db.members import update_settings
from db.moderation_rules import (
    add_rule,
    count_rules,
    default_rules_on,
    find_pattern,
    guild_rules,
    remove_rule,
)

HERE, THERE, ADMIN = 111, 222, 9


async def broken(conn, guild_id, prompt):
    rule = first_broken(await rules_for(conn, guild_id), prompt)
    return rule.label if rule else None


async def test_rules_belong_to_their_server(db):
    async with db.acquire() as conn:
        spiders = await add_rule(conn, HERE, "spider*", "no spiders", ADMIN)
        assert await add_rule(conn, HERE, "spider*", "again", ADMIN) is None  # once a server
        assert (await find_pattern(conn, HERE, "spider*")).id == spiders.id
        other = await add_rule(conn, THERE, "spider*", None, ADMIN)  # its own, elsewhere
        assert other.id != spiders.id

        assert await broken(conn, HERE, "two Spiders") == (
            f"no spiders (this server's rule #{spiders.id})")
        assert await broken(conn, THERE, "two spiders") == f"this server's rule #{other.id}"
        assert await remove_rule(conn, THERE, spiders.id) is None  # not that server's rule
        assert (await remove_rule(conn, THERE, other.id)).id == other.id
        assert await broken(conn, THERE, "two spiders") is None  # gone there only
        assert await broken(conn, HERE, "two spiders") is not None
        assert [r.id for r in await guild_rules(conn, HERE)] == [spiders.id]
        assert (await count_rules(conn, HERE), await count_rules(conn, THERE)) == (1, 0)
        assert await broken(conn, None, "two spiders") is None  # a DM: the default list only


async def test_the_default_list_applies_until_a_server_turns_it_off(db):
    explicit = "explicit sexual content (dreamloop's default list)"
    async with db.acquire() as conn:
        assert await default_rules_on(conn, HERE)  # no guild row yet
        assert await broken(conn, HERE, "a nude statue") == explicit
        await update_settings(conn, "guild", HERE, {"default_rules": False})
        assert not await default_rules_on(conn, HERE)
        assert await broken(conn, HERE, "a nude statue") is None
        assert await broken(conn, THERE, "a nude statue") == explicit  # still on there
        assert await broken(conn, None, "a nude statue") == explicit  # and in DMs
        await update_settings(conn, "guild", HERE, {"default_rules": None})
        assert await broken(conn, HERE, "a nude statue") == explicit
