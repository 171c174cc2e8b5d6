"""A minimal discord.py bot for testing the double (not dreamloop's bot).

Run as a process: `python -m discord_double.minimal_bot`, with DOUBLE_API (the
double's REST base), DOUBLE_GATEWAY, DOUBLE_TOKEN, DOUBLE_GUILD and DOUBLE_SYNC=1 to sync
its commands.
It reports Discord's refusals as channel messages, so tests can read what happened.
"""

from __future__ import annotations

import asyncio
import io
import os

import discord
import yarl
from discord import app_commands

# discord.py's own knobs: where the REST API lives, and the gateway a plain Client dials
# (an AutoShardedClient asks GET /gateway/bot instead, which the double also answers).
discord.http.Route.BASE = os.environ["DOUBLE_API"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DOUBLE_GATEWAY"])
GUILD = discord.Object(int(os.environ["DOUBLE_GUILD"]))


class Counter(discord.ui.DynamicItem[discord.ui.Button], template=r"counter:(?P<count>\d+)"):
    def __init__(self, count: int):
        super().__init__(discord.ui.Button(label=str(count), custom_id=f"counter:{count}"))
        self.count = count

    @classmethod
    async def from_custom_id(cls, interaction, item, match):
        return cls(int(match["count"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(Counter(self.count + 1))
        await interaction.response.edit_message(content=f"count {self.count + 1}", view=view)


class EditLater(discord.ui.DynamicItem[discord.ui.Button], template=r"edit:(?P<id>\d+)"):
    def __init__(self, interaction_id: int):
        super().__init__(discord.ui.Button(label="edit", custom_id=f"edit:{interaction_id}"))
        self.interaction_id = interaction_id

    @classmethod
    async def from_custom_id(cls, interaction, item, match):
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        original = interaction.client.remembered[self.interaction_id]
        try:
            await original.edit_original_response(content="edited")
            await interaction.channel.send("edit worked")
        except discord.HTTPException as error:
            await interaction.channel.send(f"edit failed: {error.code}")


class MinimalBot(discord.Client):
    def __init__(self):
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.remembered: dict[int, discord.Interaction] = {}

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Counter, EditLater)
        if os.environ.get("DOUBLE_SYNC") == "1":
            self.tree.copy_global_to(guild=GUILD)
            await self.tree.sync(guild=GUILD)


bot = MinimalBot()


@bot.tree.command()
async def echo(interaction: discord.Interaction, text: str) -> None:
    """Say the text back."""
    await interaction.response.send_message(f"echo: {text}")


@bot.tree.command()
async def slow(interaction: discord.Interaction) -> None:
    """Answer after 4 seconds (too late)."""
    await asyncio.sleep(4)
    try:
        await interaction.response.send_message("too late?")
    except discord.NotFound as error:
        await interaction.channel.send(f"slow failed: {error.code}")


@bot.tree.command()
async def remember(interaction: discord.Interaction) -> None:
    """Answer with a button that edits this answer later."""
    bot.remembered[interaction.id] = interaction
    view = discord.ui.View(timeout=None)
    view.add_item(EditLater(interaction.id))
    await interaction.response.send_message("remembered", view=view)


@bot.tree.command()
async def counter(interaction: discord.Interaction) -> None:
    """A counter whose button survives restarts."""
    view = discord.ui.View(timeout=None)
    view.add_item(Counter(0))
    await interaction.response.send_message("count 0", view=view)


@bot.tree.command()
async def big(interaction: discord.Interaction, megabytes: int) -> None:
    """Upload a file of the given size."""
    data = io.BytesIO(b"\0" * (megabytes * 1024 * 1024))
    try:
        await interaction.response.send_message(file=discord.File(data, "big.bin"))
    except discord.HTTPException as error:
        await interaction.channel.send(f"upload failed: {error.status}/{error.code}")


@bot.tree.command()
async def everyone(interaction: discord.Interaction, loud: bool) -> None:
    """Post @everyone, with Discord's default mentions (loud) or none."""
    mentions = None if loud else discord.AllowedMentions.none()
    await interaction.channel.send("@everyone look", allowed_mentions=mentions)
    await interaction.response.send_message("sent", ephemeral=True)


@bot.tree.command()
async def think(interaction: discord.Interaction) -> None:
    """Defer ("thinking…"), then answer with a follow-up."""
    await interaction.response.defer(thinking=True)
    await asyncio.sleep(0.2)
    await interaction.followup.send("thought about it")


COLOURS = ["red", "green", "blue", "rebeccapurple"]


async def colour_choices(interaction: discord.Interaction, current: str):
    return [app_commands.Choice(name=c, value=c) for c in COLOURS if c.startswith(current)]


@bot.tree.command()
@app_commands.autocomplete(colour=colour_choices)
async def paint(interaction: discord.Interaction, colour: str) -> None:
    """Paint in a colour (with autocomplete)."""
    await interaction.response.send_message(f"painted {colour}")


class Survey(discord.ui.Modal, title="A short survey"):
    """A text input, a select and a file upload, each in a Label, as Discord now lays out
    modals."""

    name = discord.ui.Label(text="Your name", component=discord.ui.TextInput(
        custom_id="name", max_length=20))
    cells = discord.ui.Label(text="Cells", component=discord.ui.Select(
        custom_id="cells", min_values=1, max_values=3,
        options=[discord.SelectOption(label=str(n), value=str(n)) for n in range(1, 10)]))
    upload = discord.ui.Label(text="A file", component=discord.ui.FileUpload(
        custom_id="upload", required=False))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        files = [a.filename for a in self.upload.component.values]
        await interaction.response.send_message(
            f"survey: {self.name.component.value} {self.cells.component.values} {files}")


@bot.tree.command()
async def survey(interaction: discord.Interaction) -> None:
    """Answer with a modal."""
    await interaction.response.send_modal(Survey())


if __name__ == "__main__":
    bot.run(os.environ["DOUBLE_TOKEN"], log_handler=None)
