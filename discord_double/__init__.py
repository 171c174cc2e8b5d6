"""A local Discord double: REST and gateway on loopback for the unmodified discord.py client."""

from discord_double.double import DiscordDouble
from discord_double.model import Interaction, Message

__all__ = ["DiscordDouble", "Interaction", "Message"]
