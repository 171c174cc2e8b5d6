"""The Discord double, driven by the unmodified discord.py client in a real bot process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from discord_double import DiscordDouble

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """The minimal bot as its own process, which a test may restart."""

    def __init__(self, double: DiscordDouble, log: Path):
        self.double, self.log = double, log
        self.process: subprocess.Popen | None = None

    async def start(self, sync: bool = True) -> None:
        env = os.environ | {"DOUBLE_API": self.double.api_base,
                            "DOUBLE_GATEWAY": self.double.gateway_url,
                            "DOUBLE_TOKEN": self.double.token,
                            "DOUBLE_GUILD": str(self.double.guild_id),
                            "DOUBLE_SYNC": "1" if sync else "0"}
        connected = self.double.identify_count
        with self.log.open("a") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "discord_double.minimal_bot"], cwd=ROOT, env=env,
                stdout=sink, stderr=sink)
        await self.double._until(lambda: self.double.identify_count > connected, 30,
                                 f"the bot did not connect:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
async def bot(double, tmp_path):
    bot = BotProcess(double, tmp_path / "bot.log")
    await bot.start()
    yield bot
    bot.kill()


async def test_the_bot_logs_in_connects_and_syncs_its_commands(double, bot):
    names = {command["name"] for command in double.commands[double.guild_id]}
    assert names == {"echo", "slow", "remember", "counter", "big", "everyone", "think", "paint",
                     "survey"}
    assert double.command_syncs == 1
    assert [s.compressor.kind for s in double.sessions] == ["zlib-stream"]
    assert double.unhandled == []


async def test_a_slash_command_reaches_the_bot_and_the_member_sees_the_reply(double, bot):
    interaction = await double.slash("alice", "general", "echo", text="hello <3")
    reply = await double.wait_for_message("general", lambda m: m.content.startswith("echo"))
    assert reply.content == "echo: hello <3"
    assert interaction.callback_type == 4 and interaction.acknowledged_after < 3
    assert reply.id == interaction.original_message_id


async def test_a_deferred_answer_shows_thinking_then_a_follow_up(double, bot):
    interaction = await double.slash("bob", "general", "think")
    await double.wait_for_message("general", lambda m: m.content == "thought about it")
    assert interaction.callback_type == 5  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    original = double.messages[interaction.original_message_id]
    assert original.payload["flags"] & 128  # still "thinking…": the bot sent a follow-up


async def test_autocomplete_offers_the_bots_choices(double, bot):
    interaction = await double.autocomplete("alice", "general", "paint", "colour", "r")
    await double.wait_for_callback(interaction)
    assert interaction.callback_type == 8
    choices = interaction.callbacks[0][1]["data"]["choices"]
    assert [c["value"] for c in choices] == ["red", "rebeccapurple"]


async def test_a_modal_is_shown_and_its_submit_reaches_the_bot(double, bot):
    interaction = await double.slash("alice", "general", "survey")
    await double.wait_for_callback(interaction)
    assert interaction.callback_type == 9 and double.shown_modal(interaction)["title"] == (
        "A short survey")
    upload = double.upload("mask.png", b"\x89PNG...", "image/png")
    await double.submit_modal("alice", interaction, {"name": "Al", "cells": ["1", "5"],
                                                    "upload": [upload]})
    reply = await double.wait_for_message("general", lambda m: m.content.startswith("survey"))
    assert reply.content == "survey: Al ['1', '5'] ['mask.png']"
    again = await double.slash("bob", "general", "survey")  # a modal is submitted once
    await double.wait_for_callback(again)
    await double.submit_modal("bob", again, {"name": "Bo", "cells": ["9"]})
    reply = await double.wait_for_message("general", lambda m: "Bo" in m.content)
    assert reply.content == "survey: Bo ['9'] []"


async def test_a_modal_refuses_what_discords_client_would_not_submit(double, bot):
    interaction = await double.slash("alice", "general", "survey")
    await double.wait_for_callback(interaction)
    with pytest.raises(AssertionError, match="name is required"):
        await double.submit_modal("alice", interaction, {"cells": ["1"]})
    with pytest.raises(AssertionError, match="choose 1 to 3"):
        await double.submit_modal("alice", interaction, {"name": "x", "cells": list("1234")})
    with pytest.raises(AssertionError, match="not options"):
        await double.submit_modal("alice", interaction, {"name": "x", "cells": ["0"]})
    with pytest.raises(AssertionError, match="no field"):
        await double.submit_modal("alice", interaction, {"name": "x", "colour": "red"})


async def test_a_dynamic_button_still_works_after_the_bot_restarts(double, bot):
    await double.slash("bob", "art", "counter")
    message = await double.wait_for_message("art", lambda m: m.content == "count 0")
    await double.click("alice", message, "counter:0")
    await double.wait_for_message("art", lambda m: m.content == "count 1")
    bot.kill()
    await bot.start(sync=False)  # a restart needs no command sync
    await double.click("bob", message, "counter:1")
    await double.wait_for_message("art", lambda m: m.content == "count 2")
    assert double.command_syncs == 1


async def test_an_answer_after_3_seconds_gets_unknown_interaction_10062(double, bot):
    interaction = await double.slash("alice", "general", "slow")
    failed = await double.wait_for_message("general", lambda m: "slow failed" in m.content)
    assert failed.content == "slow failed: 10062"
    assert interaction.callbacks == [] and interaction.errors[0].code == 10062


async def test_an_edit_after_15_minutes_gets_invalid_webhook_token_50027(double, bot):
    interaction = await double.slash("alice", "general", "remember")
    message = await double.wait_for_message("general", lambda m: m.content == "remembered")
    double.clock.advance(16 * 60)
    await double.click("alice", message, f"edit:{interaction.id}")
    failed = await double.wait_for_message("general", lambda m: "edit failed" in m.content)
    assert failed.content == "edit failed: 50027"
    assert message.content == "remembered"


async def test_an_edit_within_15_minutes_works(double, bot):
    interaction = await double.slash("alice", "general", "remember")
    message = await double.wait_for_message("general", lambda m: m.content == "remembered")
    double.clock.advance(14 * 60)
    await double.click("alice", message, f"edit:{interaction.id}")
    await double.wait_for_message("general", lambda m: m.content == "edit worked")
    assert message.content == "edited"


async def test_an_upload_over_the_limit_gets_413_40005(double, bot):
    await double.slash("alice", "general", "big", megabytes=11)
    failed = await double.wait_for_message("general", lambda m: "upload failed" in m.content)
    assert failed.content == "upload failed: 413/40005"
    await double.slash("alice", "general", "big", megabytes=1)
    ok = await double.wait_for_message("general", lambda m: m.files)
    assert len(ok.files["big.bin"]) == 1024 * 1024


async def test_everyone_is_pinged_by_default_and_no_one_with_allowed_mentions_none(double, bot):
    await double.slash("alice", "general", "everyone", loud=True)
    loud = await double.wait_for_message("general", lambda m: m.content == "@everyone look")
    await double.slash("alice", "general", "everyone", loud=False)
    await double.wait_for_message(
        "general", lambda m: m.content == "@everyone look" and m.id != loud.id)
    quiet = [m for m in double.channel_messages("general") if m.content == "@everyone look"][-1]
    assert loud.pinged["everyone"] is True
    assert quiet.pinged == {"everyone": False, "users": set(), "roles": set()}
    # The ephemeral "sent" is visible only to the member who ran the command.
    assert [m.content for m in double.channel_messages("general", viewer="alice")
            if m.content == "sent"] == ["sent", "sent"]
    assert all(m.content != "sent" for m in double.channel_messages("general", viewer="bob"))


async def test_a_dropped_connection_resumes_and_keeps_working(double, bot):
    [session] = [s for s in double.sessions if s.identified]
    await session.socket.close(code=4000)  # Discord's "unknown error: reconnect"
    await double._until(lambda: any(s.id == session.id and s.socket is not None
                                     and s is not session for s in double.sessions), 30,
                        "the bot did not resume")
    await double.slash("bob", "general", "echo", text="after resume")
    await double.wait_for_message("general", lambda m: m.content == "echo: after resume")
    assert double.identify_count == 1  # resumed, not re-identified


# -- rules checked directly over HTTP (no bot needed) ----------------------------------------

async def post(double: DiscordDouble, path: str, body, token: bool = True):
    headers = {"Authorization": f"Bot {double.token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.post(
            double.api_base + path, json=body, headers=headers) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def test_a_second_callback_gets_already_acknowledged_40060(double):
    double.commands[double.guild_id] = [{"id": "1", "name": "echo", "options": []}]
    interaction = await double.slash("alice", "general", "echo")
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    body = {"type": 4, "data": {"content": "hi"}}
    assert (await post(double, path, body, token=False))[0] == 204
    assert await post(double, path, body, token=False) == (
        400, {"message": "Interaction has already been acknowledged.", "code": 40060})


@pytest.mark.parametrize(("components", "field"), [
    ([{"type": 1, "components": [{"type": 2, "style": 1, "label": "x",
                                  "custom_id": "x" * 101}]}],
     "components.0.components.0.custom_id"),
    ([{"type": 1, "components": [{"type": 2, "style": 1, "label": str(i),
                                  "custom_id": str(i)} for i in range(6)]}],
     "components.0.components"),
    ([{"type": 1, "components": []}] * 6, "components"),
])
async def test_components_past_discords_limits_get_50035(double, components, field):
    channel = double.channel_id("general")
    status, body = await post(double, f"/channels/{channel}/messages",
                              {"content": "x", "components": components})
    assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
    assert field in body["errors"]


async def test_a_repeated_nonce_returns_the_first_message(double):
    path = f"/channels/{double.channel_id('general')}/messages"
    body = {"content": "grid", "nonce": "grid-42", "enforce_nonce": True}
    first = await post(double, path, body)
    again = await post(double, path, body)
    assert first == again and first[0] == 200
    assert len(double.channel_messages("general")) == 1


async def test_requests_without_the_bot_token_get_401(double):
    status, body = await post(double, f"/channels/{double.channel_id('general')}/messages",
                              {"content": "x"}, token=False)
    assert (status, body) == (401, {"message": "401: Unauthorized", "code": 0})


async def test_the_double_leaves_no_socket_behind(double):
    port = double.port
    await double.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
