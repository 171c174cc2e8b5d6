"""A server's own member limits and lanes (/settings server), and its bans, at admission:
in PostgreSQL, so every bot process admits by them (two servers, one member)."""

from __future__ import annotations

import re

import pytest

from bot.guild_limits import GuildLimitError, check_limit
from bot.limits import BANNED, Banned, LimitReached, Limits
from db.guild_bans import add_ban
from db.members import update_settings
from tests.factories import imagine_request
from tests.test_limits import MEMBER, services_with, start

STRICT, LOOSE = 1001, 1002  # two servers the member uses


async def set_guild(db, guild_id: int, **settings) -> None:
    async with db.acquire() as conn:
        await update_settings(conn, "guild", guild_id, settings)


async def test_each_server_admits_by_its_own_max_queued_and_per_minute(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, max_running=1,
                             per_minute=100)
    await set_guild(db, STRICT, max_queued=2)
    await set_guild(db, LOOSE, per_minute=4)
    # max_running 1: the first job is in flight, the rest wait (queued) for it.
    for _ in range(2):
        await start(services, guild_id=STRICT)
    with pytest.raises(LimitReached, match="You have 2 jobs waiting, the most allowed"):
        await start(services, guild_id=STRICT)
    await start(services, guild_id=LOOSE)  # the operator's 10 waiting apply there
    await start(services, guild_id=LOOSE)  # 4 started this minute: LOOSE's limit
    with pytest.raises(LimitReached, match="You started 4 jobs in the last minute"):
        await start(services, guild_id=LOOSE)
    restarted = services_with(db, redis_client, keys, registry, tmp_path, max_running=1,
                              per_minute=100)
    with pytest.raises(LimitReached, match="You started 4 jobs"):  # held in PostgreSQL
        await start(restarted, guild_id=LOOSE)
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 4


@pytest.mark.parametrize(("lanes", "asked", "runs_in"), [
    ("relax", "fast", "relax"), ("relax", "turbo", "relax"), ("fast_relax", "turbo", "fast"),
    ("fast_relax", "relax", "relax"), ("all", "turbo", "turbo")])
async def test_a_lane_the_server_disallows_falls_back_to_an_allowed_one(
        db, redis_client, keys, registry, tmp_path, lanes, asked, runs_in):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    await set_guild(db, STRICT, lanes=lanes)
    job, _ = await services.start_job(_request(STRICT), 1, lane=asked)
    assert job.lane == runs_in


async def test_a_servers_max_running_is_the_dispatchers_cap_for_its_jobs(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path, per_minute=100)
    await set_guild(db, STRICT, max_running=1)
    strict = [(await start(services, guild_id=STRICT))[0] for _ in range(2)]
    assert [job.dispatched_at is not None for job in strict] == [True, False]
    loose = [(await start(services, guild_id=LOOSE))[0] for _ in range(2)]
    assert [job.dispatched_at is not None for job in loose] == [True, True]  # 3 in flight


async def test_a_zero_fast_allowance_sends_the_servers_jobs_to_relax(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    await set_guild(db, STRICT, fast_gpu_seconds=0)
    assert (await start(services, guild_id=STRICT))[0].lane == "relax"
    assert (await start(services, guild_id=LOOSE))[0].lane == "fast"


async def test_a_member_banned_in_one_server_is_refused_there_only(
        db, redis_client, keys, registry, tmp_path):
    services = services_with(db, redis_client, keys, registry, tmp_path)
    async with db.acquire() as conn:
        await add_ban(conn, STRICT, MEMBER, 1, "spam")
    with pytest.raises(Banned, match=re.escape(BANNED)):
        await start(services, guild_id=STRICT)
    assert (await start(services, guild_id=LOOSE))[1]


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("max_queued", 0, "from 1 to 10"), ("max_queued", 11, "from 1 to 10"),
    ("per_minute", -1, "from 1 to 10"), ("max_running", 4, "from 1 to 3"),
    ("fast_gpu_seconds", 901, "from 0 to 900")])
def test_a_server_limit_out_of_range_names_the_option_and_the_range(key, value, allowed):
    with pytest.raises(GuildLimitError, match=f"Not saved: {key} must be {allowed} "
                                              rf"\(the bot's operator allows at most \d+\); "
                                              f"it was {value}."):
        check_limit(key, value, Limits())


def _request(guild_id: int):
    return imagine_request(user_id=MEMBER, guild_id=guild_id)
