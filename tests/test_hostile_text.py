"""Hostile text: slash command payloads sent raw past Discord's own limits (6,000+
characters, control characters, lone surrogates, options out of range, of the wrong type,
unknown or missing), and stream entries a worker must refuse (the stream is an input
too). Each is refused with a sentence for a person; nothing is created or lost, and the
bot and the worker keep serving."""

from __future__ import annotations

import json

import pytest

from generation.keys import WORKER_GROUP
from tests.bot_stack import is_grid, told
from tests.factories import imagine_request
from tests.test_pool import wait_for_results
from tests.test_worker import queue, worker_env, workers  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(300)
TINY = {"name": "model", "type": 3, "value": "tiny-random"}


def text(name: str, value) -> dict:
    return {"name": name, "type": 3, "value": value}


# (command, options as sent, what the member is told)
HOSTILE = [
    ("imagine", [text("prompt", "a fox " * 1100), TINY],
     "The prompt option is 6600 characters long: at most 6000 are allowed."),
    ("imagine", [text("prompt", "x" * 3000), TINY],
     "at most 2000 characters, got 3000"),  # within Discord's limit: the job's own
    ("imagine", [text("prompt", "a fox\x00 in snow"), TINY],
     "The prompt option holds the control character U+0000: plain text only"),
    ("imagine", [text("prompt", "red \x1b[31m fox"), TINY],
     "The prompt option holds the control character U+001B"),
    ("imagine", [text("prompt", "a fox \ud83d in snow"), TINY],
     "The prompt option holds a broken character (half of a UTF-16 pair, U+D83D)"),
    ("imagine", [text("prompt", "a fox"), text("model", "tiny\x00random")],
     "The model option holds the control character U+0000"),
    ("imagine", [text("prompt", "a fox"), text("aspect", "7:1"), TINY],
     "The aspect option must be one of its choices: 1:1, 3:2, 2:3"),
    ("imagine", [text("prompt", 42), TINY], "The prompt option must be text."),
    ("imagine", [{"name": "prompt", "type": 10, "value": "a fox"}, TINY],
     "The prompt option must be text."),  # a forged type: discord.py would float() it
    ("imagine", [text("prompt", "a fox"), text("steps", "999"), TINY],
     "/imagine has no option named “steps”; its options: prompt, aspect, model, image."),
    ("imagine", [TINY], "/imagine needs its prompt option."),
    ("imagine", ["not an object"], "That command arrived in a shape I cannot read"),
    ("show", [{"name": "job", "type": 4, "value": 10**30}],
     "The job option is 1000000000000000000000000000000: allowed -9007199254740992 to "
     "9007199254740992."),
    ("cancel", [{"name": "job", "type": 4, "value": "abc"}],
     "The job option must be a whole number."),
    ("cancel", [{"name": "job", "type": 4, "value": True}],
     "The job option must be a whole number."),
    ("models", [{"name": "weight", "type": 1, "options": [  # a subcommand's options
        text("version", "tiny@dpo-1"), {"name": "weight", "type": 10, "value": float("nan")}]}],
     "The weight option is nan: it must be at least 0."),
    ("models", [{"name": "weight", "type": 1, "options": [
        text("version", "tiny@dpo-1"), {"name": "weight", "type": 10, "value": -1e308}]}],
     "The weight option is -1e+308: it must be at least 0."),
]


async def job_rows(db) -> list:
    async with db.acquire() as conn:
        return await conn.fetch("SELECT id, member_id, status FROM jobs ORDER BY id")


async def test_raw_payloads_past_discords_limits_are_refused_and_create_nothing(
        double, db, stack):
    await double.slash("bob", "general", "imagine", prompt="bob's fox", model="tiny-random")
    await double.wait_for_message("general", lambda m: "bob's fox" in m.content)
    [bobs] = await job_rows(db)
    for command, options, message in HOSTILE:
        interaction = await double.slash_raw("alice", "general", command, options)
        await double.wait_for_callback(interaction)
        assert interaction.errors == []
        await told(double, "alice", message)
    said = [m.content for m in double.channel_messages("general", viewer="alice")
            if m.payload["flags"] & 64]
    assert len(said) == len(HOSTILE)  # one answer each, all ephemeral
    assert not any(c in m for m in said for c in ("\x00", "\x1b", "\ud83d", "Traceback"))
    async with db.acquire() as conn:  # admins can see what was refused, and whom
        logged = await conn.fetch("SELECT target_id, detail FROM moderation_log "
                                  "WHERE action = 'options_refused' ORDER BY id")
    assert len(logged) == len(HOSTILE) - 1  # all but the 3000 characters: the parser's
    assert {row["target_id"] for row in logged} == {double.user_id("alice")}
    assert logged[0]["detail"]["reason"] == HOSTILE[0][2]
    # Nothing created, bob's job untouched and drawn; and the bot still serves alice.
    assert [row["id"] for row in await job_rows(db)] == [bobs["id"]]
    await double.wait_for_message("general", lambda m: is_grid(m) and "bob's fox" in m.content,
                                  timeout=120)
    await double.slash("alice", "general", "imagine", prompt="a calm fox", model="tiny-random")
    await double.wait_for_message("general", lambda m: is_grid(m) and "calm fox" in m.content,
                                  timeout=120)
    assert [(row["member_id"], row["status"]) for row in await job_rows(db)] == [
        (double.user_id("bob"), "succeeded"), (double.user_id("alice"), "succeeded")]
    assert double.unhandled == []


def entry(**changes) -> str:
    return json.dumps(json.loads(imagine_request().to_json()) | changes)


# (job id, the request text put straight on the stream, what its dead-letter reason says)
BAD_ENTRIES = [
    ("long", entry(prompt="a fox " * 1100), "at most 2000 characters, got 6600"),
    ("nul", entry(prompt="a fox\x00"), "contains the control character U+0000"),
    # "\ud800" in the JSON text itself: a lone surrogate, as any client could write it
    ("surrogate", entry(prompt="fox").replace('"fox"', '"fox \\ud800"'),
     "contains the control character U+D800"),
    ("steps", entry(steps=10**6), "steps is 1000000: allowed 1 to 150"),
    ("type", entry(steps="many"), "steps is 'many': must be a whole number"),
    ("unknown", entry(evil=1), "unknown field(s)"),
    ("size", entry(width=65536, height=65536), "width is 65536: a multiple of"),
]


async def test_a_worker_fails_hostile_stream_entries_and_keeps_serving(queue, workers):  # noqa: F811
    stream = queue.keys.jobs("tiny-random", "fast")
    await queue.ensure_group(stream)
    for job_id, request, _ in BAD_ENTRIES:
        await queue.redis.xadd(stream, {"job": job_id, "request": request})
    await queue.enqueue("good", imagine_request())
    worker = workers()
    outcomes = {o["job"]: o for o in await wait_for_results(queue, len(BAD_ENTRIES) + 1)}
    assert outcomes.pop("good")["status"] == "succeeded"
    for job_id, _, reason in BAD_ENTRIES:
        assert outcomes[job_id]["status"] == "dead", job_id
        assert outcomes[job_id]["error"].startswith("not a valid job: "), job_id
        assert reason in outcomes[job_id]["error"], (job_id, outcomes[job_id]["error"])
    assert worker.process.poll() is None and "Traceback" not in worker.text()
    summary = await queue.redis.xpending(stream, WORKER_GROUP)
    assert summary["pending"] == 0 and await queue.redis.xlen(stream) == 0
