"""Admin controls end to end (/mod, /settings server's limits and lanes): the bot itself
checks Manage Server, a ban stops a member here and cancels their work, a server's limits
and lanes hold, and every action is in the moderation log."""

from __future__ import annotations

import pytest

from bot.limits import BANNED
from tests.bot_stack import is_grid, reply_to, told
from tests.test_worker import Worker

pytestmark = pytest.mark.timeout(300)

MANAGE_GUILD = 1 << 5


async def log_actions(db) -> list[str]:
    async with db.acquire() as conn:
        return [r["action"] for r in await conn.fetch(
            "SELECT action FROM moderation_log ORDER BY id")]


async def count(db, sql: str, *args) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval(sql, *args)


@pytest.mark.parametrize(("command", "options"), [
    ("mod ban", {"member": "alice"}), ("mod unban", {"member": "alice"}), ("mod bans", {}),
    ("mod log", {}), ("settings server", {"max_queued": 1, "lanes": "relax"})])
async def test_admin_commands_refuse_a_member_without_manage_server(double, db, stack,
                                                                    command, options):
    mod = next(c for c in double.commands[double.guild_id] if c["name"] == "mod")
    assert int(mod["default_member_permissions"]) == MANAGE_GUILD  # only Discord's default
    # The double shows every command to everyone: as a server whose admins exposed it.
    refused = await double.slash("bob", "general", command, **options)
    assert "Only members with the Manage Server permission" in await reply_to(double, refused)
    assert await count(db, "SELECT count(*) FROM guild_bans") == 0
    assert await count(db, "SELECT count(*) FROM guilds WHERE settings <> '{}'") == 0
    assert await log_actions(db) == ["refused_not_an_admin"]


async def test_a_ban_stops_a_member_here_and_cancels_their_queued_job(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a fox", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    fox = int(grid.custom_ids()[0].split(":")[2])
    for worker in stack.workers:
        worker.stop()
    wolf = await double.slash("bob", "general", "imagine", prompt="a waiting wolf",
                              model="tiny-random")
    await double.wait_for_message("general", lambda m: "a waiting wolf" in m.content)
    wolf_id = await count(db, "SELECT id FROM jobs WHERE interaction_id = $1", wolf.id)

    ban = await double.slash("alice", "general", "mod ban", member="bob", reason="spam")
    assert await reply_to(double, ban) == (
        f"<@{double.user_id('bob')}> can no longer use dreamloop here; cancelled their "
        f"job(s) {wolf_id}. /mod unban lets them again.")
    assert await count(db, "SELECT status FROM jobs WHERE id = $1", wolf_id) == "cancelled"
    await double.wait_for_message("general", lambda m: "a waiting wolf" in m.content
                                  and m.content.endswith("— cancelled"))
    again = await double.slash("alice", "general", "mod ban", member="bob")
    assert await reply_to(double, again) == f"<@{double.user_id('bob')}> is already banned here."
    for member, said in (("alice", "You cannot ban yourself."),
                         ("bot", "dreamloop cannot ban itself")):
        refused = await double.slash("alice", "general", "mod ban", member=member)
        assert said in await reply_to(double, refused)

    # Refused everywhere a job or feedback would be made here.
    refused = await double.slash("bob", "general", "imagine", prompt="a sneaky wolf",
                                 model="tiny-random")
    assert await reply_to(double, refused) == BANNED
    for custom_id in (f"dl:v:{fox}:1", f"dl:u:{fox}:2", f"dl:r:{fox}"):
        click = await double.click("bob", grid, custom_id)
        assert await reply_to(double, click) == BANNED
    show = await double.slash("bob", "general", "show", job=fox)
    assert await reply_to(double, show) == BANNED
    assert await count(db, "SELECT count(*) FROM jobs") == 2
    assert await count(db, "SELECT count(*) FROM feedback_events") == 0

    # The cancelled job never runs: a worker back draws the next job, not it.
    stack.workers.append(Worker(stack.env, stack.folder / "late-worker.log"))
    await double.slash("alice", "general", "imagine", prompt="an owl", model="tiny-random")
    await double.wait_for_message("general", lambda m: is_grid(m) and "an owl" in m.content,
                                  timeout=120)
    assert not any(is_grid(m) and "a waiting wolf" in m.content
                   for m in double.channel_messages("general"))
    assert await count(db, "SELECT count(*) FROM images WHERE job_id = $1", wolf_id) == 0

    bans = await double.slash("alice", "general", "mod bans")
    assert (f"<@{double.user_id('bob')}> by <@{double.user_id('alice')}> <t:"
            in await reply_to(double, bans))
    unban = await double.slash("alice", "general", "mod unban", member="bob")
    assert await reply_to(double, unban) == (
        f"<@{double.user_id('bob')}> can use dreamloop here again.")
    await double.slash("bob", "general", "imagine", prompt="a free wolf", model="tiny-random")
    await double.wait_for_message("general", lambda m: is_grid(m) and "a free wolf" in m.content,
                                  timeout=120)

    log = await double.slash("alice", "general", "mod log")
    lines = (await reply_to(double, log)).splitlines()
    bob = f"<@{double.user_id('bob')}>"
    alice = f"<@{double.user_id('alice')}>"
    assert all(line.startswith("<t:") and line.split(" ")[0].endswith(":R>") for line in lines)
    assert [line.split(" ")[1:4] for line in lines] == [
        [alice, "**unban**", bob]] + [
        ["dreamloop", "**refused\\_banned\\_member**", f"{bob}:"]] * 5 + [
        [alice, "**ban**", f"{bob}:"]]
    assert lines[-1].endswith(f": reason: spam; cancelled jobs: {wolf_id}")
    assert lines[1].endswith(": tried: /show")
    only_bans = await double.slash("alice", "general", "mod log", action="ban", limit=5)
    assert len((await reply_to(double, only_bans)).splitlines()) == 1


async def test_a_servers_limits_and_lanes_hold_and_are_logged(double, db, stack):
    wrong = await double.slash("alice", "general", "settings server", max_queued=11)
    assert await reply_to(double, wrong) == (
        "Not saved: max_queued must be from 1 to 10 (the bot's operator allows at most 10); "
        "it was 11.")
    saved = await double.slash("alice", "general", "settings server", max_queued=1,
                               lanes="relax")
    assert await reply_to(double, saved) == (
        "This server's settings: max queued: 1; lanes: relax only")
    for worker in stack.workers:
        worker.stop()  # so the first job is still waiting when the second is asked for
    first = await double.slash("bob", "general", "imagine", prompt="a moth --turbo",
                               model="tiny-random")
    await told(double, "bob", "This server lets members use relax only, so this job runs in "
                              "the relax lane, not turbo.")
    assert await count(db, "SELECT lane FROM jobs WHERE interaction_id = $1", first.id
                       ) == "relax"
    second = await double.slash("bob", "general", "imagine", prompt="a second moth",
                                model="tiny-random")
    assert "You have 1 jobs waiting, the most allowed" in await reply_to(double, second)
    assert await count(db, "SELECT count(*) FROM jobs") == 1
    assert await log_actions(db) == ["settings_changed"]
    log = await double.slash("alice", "general", "mod log")
    assert (await reply_to(double, log)).endswith(
        f"<@{double.user_id('alice')}> **settings\\_changed**: lanes: relax; max queued: 1")
    # Discord's client keeps to the range; a raw payload need not.
    for options, said in (({"limit": 500}, "The limit option is 500: allowed 1 to 50."),
                          ({"action": "DROP TABLE"}, "action is one word of lower-case")):
        bad = await double.slash("alice", "general", "mod log", **options)
        assert said in await reply_to(double, bad)


async def test_buttons_in_a_channel_taken_off_the_list_are_refused(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a heron", model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=120)
    job = int(grid.custom_ids()[0].split(":")[2])
    closed = await double.slash("alice", "general", "settings server", allow_channel="art")
    await reply_to(double, closed)
    click = await double.click("bob", grid, f"dl:v:{job}:1")
    assert await reply_to(double, click) == (
        f"This message's buttons work only in <#{double.channel_id('art')}> on this server "
        "(set by its admins with /settings server).")
    assert await count(db, "SELECT count(*) FROM jobs") == 1
    assert await count(db, "SELECT count(*) FROM feedback_events") == 0


async def test_a_banned_members_rate_votes_are_refused(double, db, stack):
    await double.slash("alice", "general", "imagine", prompt="a lighthouse", model="tiny-random")
    await double.wait_for_message("general", is_grid, timeout=120)
    await double.slash("bob", "general", "rate")
    shown = await double.wait_for_message(
        "general", lambda m: any(c.startswith("dl:rate:") for c in m.custom_ids()),
        viewer="bob")
    ban = await double.slash("alice", "general", "mod ban", member="bob")
    await reply_to(double, ban)
    await double.click("bob", shown, shown.custom_ids()[0])
    await told(double, "bob", BANNED)
    assert await count(db, "SELECT count(*) FROM comparisons") == 0
    again = await double.slash("bob", "general", "rate")
    assert await reply_to(double, again) == BANNED
