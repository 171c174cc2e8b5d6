"""A bot in a crash loop stays far under Discord's 1,000 IDENTIFYs a day (issue 17.8):
the schedule over a simulated day, its record in real Redis, and the real `dreamloop bot`
process killed at every IDENTIFY, counted by the Discord double."""

from __future__ import annotations

import re

import pytest

from dreamloop.start_backoff import DAY_S, HEALTHY_S, plan_start, record_start
from tests.bot_stack import BotProcess, stack_env

pytestmark = pytest.mark.timeout(300)


def identifies_in_a_day_of_crashes(uptime_s: float) -> int:
    """Each start connects (IDENTIFY) after its wait and crashes uptime_s later."""
    now, connect, streak, identifies = 0.0, float("-inf"), 0, 0
    while True:
        delay, streak = plan_start(connect, streak, now)
        connect = now + delay
        if connect >= DAY_S:
            return identifies
        identifies += 1
        now = connect + uptime_s


@pytest.mark.parametrize("uptime_s", [0.0, 1.0, 30.0, HEALTHY_S - 1])
def test_a_day_of_crash_loop_identifies_far_under_1000_times(uptime_s):
    identifies = identifies_in_a_day_of_crashes(uptime_s)
    print(f"crash after {uptime_s} s up: {identifies} IDENTIFYs a day")
    assert identifies <= 160


def test_a_bot_that_stayed_up_restarts_at_once():
    connect = 1000.0
    assert plan_start(connect, 5, connect + HEALTHY_S) == (0.0, 0)
    assert plan_start(connect, 0, connect + 1) == (5.0, 1)
    assert plan_start(connect, 20, connect + 1) == (600.0, 21)


async def test_quick_restarts_wait_longer_each_time_in_redis(redis_client, keys):
    plans = [await record_start(redis_client, keys.bot_starts, now=t) for t in (0, 1, 7, 18)]
    assert plans == [(0.0, 0), (5.0, 1), (10.0, 2), (20.0, 3)]
    assert await record_start(redis_client, keys.bot_starts, now=38 + HEALTHY_S) == (0.0, 0)


async def test_a_bot_killed_at_every_identify_identifies_once_a_start_with_growing_waits(
        double, db, database_url, db_schema, redis_url, keys, cli_env, tmp_path):
    env = stack_env(double, database_url, db_schema, redis_url, keys, cli_env, tmp_path) | {
        "DREAMLOOP_RESTART_BACKOFF_S": "0.5"}
    bot = BotProcess(env, tmp_path / "bot.log")
    for start in range(1, 5):  # a supervisor restarting it at once, like docker or systemd
        bot.start()
        await double._until(lambda start=start: double.identify_count >= start, 120,
                            f"start {start} did not connect")
        bot.kill()  # crashes right after IDENTIFY
    waits = re.findall(r"waiting ([\d.]+) s before connecting", bot.log.read_text())
    print(f"4 starts: {double.identify_count} IDENTIFYs, waits {waits}")
    assert double.identify_count == 4  # one a start: no reconnect storm
    assert waits == ["0.5", "1", "2"]
