"""/show end to end: it posts where it is asked, only jobs of this server, a few a minute per
member; and every way the post can fail is answered, never left "thinking…"."""

from __future__ import annotations

import pytest

from tests.bot_stack import is_grid, reply_to

pytestmark = pytest.mark.timeout(300)


async def finished_job(double, db) -> tuple[int, object]:
    await double.slash("alice", "general", "imagine", prompt="a paper crane",
                       model="tiny-random")
    grid = await double.wait_for_message("general", is_grid, timeout=180)
    return int(grid.custom_ids()[0].split(":")[2]), grid


def grids(double, channel: str) -> list:
    return [m for m in double.channel_messages(channel) if is_grid(m)]


async def test_show_posts_where_asked_only_for_this_server_and_a_few_a_minute(double, db,
                                                                             stack):
    job, grid = await finished_job(double, db)
    shown = await double.slash("bob", "art", "show", job=job)
    assert await reply_to(double, shown) == f"Job {job} is posted below."
    [again] = grids(double, "art")
    assert again.custom_ids() == grid.custom_ids()
    assert grids(double, "general") == [grid]  # nothing new in the job's own channel

    for _ in range(4):  # 5 a minute: this and the one above
        assert await reply_to(double, await double.slash("bob", "art", "show", job=job)) == (
            f"Job {job} is posted below.")
    over = await double.slash("bob", "art", "show", job=job)
    assert (await reply_to(double, over)).startswith(
        "You used /show 5 times this minute, the most allowed; try again in ")
    assert len(grids(double, "art")) == 5
    mine = await double.slash("alice", "art", "show", job=job)  # each member has their own
    assert await reply_to(double, mine) == f"Job {job} is posted below."

    async with db.acquire() as conn:  # as if made in another server the bot is in
        await conn.execute("INSERT INTO guilds (id) VALUES ($1)", double.guild_id + 1)
        await conn.execute("UPDATE jobs SET guild_id = $2 WHERE id = $1", job,
                           double.guild_id + 1)
    foreign = await double.slash("alice", "general", "show", job=job)
    assert await reply_to(double, foreign) == (
        f"Job {job} was made in another server: /show shows jobs made in this one.")
    assert len(grids(double, "general")) == 1


async def test_every_failed_show_is_answered(double, db, stack):
    job, _ = await finished_job(double, db)
    missing = await double.slash("alice", "general", "show", job=job + 1000)
    assert await reply_to(double, missing) == f"Job {job + 1000} has no finished images to show."

    async with db.acquire() as conn:  # the job's own channel is gone: shown here all the same
        await conn.execute("UPDATE jobs SET channel_id = 1 WHERE id = $1", job)
    gone = await double.slash("alice", "art", "show", job=job)
    assert await reply_to(double, gone) == f"Job {job} is posted below."

    double.revoke_access("art")
    closed = await double.slash("bob", "art", "show", job=job)
    assert await reply_to(double, closed) == (
        f"I cannot post job {job} in this channel (Missing Access); ask an admin to let me "
        "send messages and attach files here, or use /show in another channel.")

    # A grid over the limit goes as a smaller WebP (a tiny one fits even 100 bytes), so
    # only a limit of a few bytes leaves nothing that fits.
    double.upload_limit = 10
    too_big = await double.slash("bob", "general", "show", job=job)
    assert await reply_to(double, too_big) == (
        "The image cannot be made to fit this server's upload limit (10 bytes), not even "
        "as a smaller WebP.")
    assert len(grids(double, "general")) == 1
