"""Clicks from strangers: a per-member click limit, and an answer for buttons that are
not ours.

A click is an input like any other. A client can send any custom_id (a forged one, or a
button of a version long gone); discord.py dispatches only those matching a button's
template and found on the clicked message, and drops the rest without a word, so the
member would see "This interaction failed". And one
member clicking U/V/🔄 thirty times a second must not make thirty feedback events and
jobs: the limit is counted in Redis, so it holds across bot processes and restarts.
"""

from __future__ import annotations

import logging

import discord

from bot.refusals import log_refusal

log = logging.getLogger(__name__)

CLICKS_PER_WINDOW = 8  # a member's clicks on our buttons in any window; the rest wait
CLICK_WINDOW_S = 10
NOT_OURS = ("That button is not one I can use (it may be from an old message, or changed "
            "on the way); use the buttons under a grid or an image.")


async def click_refusal(interaction: discord.Interaction) -> str | None:
    """Count this click in the member's window; the refusal once the window's are spent."""
    queue = interaction.client.services.queue
    key = queue.keys.clicks(interaction.user.id)
    async with queue.redis.pipeline(transaction=True) as pipe:
        # SET NX EX opens the window (not EXPIRE NX: the embedded Redis predates Redis 7).
        pipe.set(key, 0, ex=CLICK_WINDOW_S, nx=True).incr(key).ttl(key)
        _, count, seconds_left = await pipe.execute()
    if count <= CLICKS_PER_WINDOW:
        return None
    if count == CLICKS_PER_WINDOW + 1:  # once a window, not once a click
        await log_refusal(interaction, "clicks_slowed", limit=CLICKS_PER_WINDOW,
                          window_s=CLICK_WINDOW_S)
    return (f"Slow down: at most {CLICKS_PER_WINDOW} clicks in {CLICK_WINDOW_S} s. Try "
            f"again in {max(seconds_left, 1)} s.")


class UnknownButtons:
    """Answers, ephemerally, each click that no button of ours (nor any live view) takes."""

    def __init__(self, templates):
        self.templates = [item.__discord_ui_compiled_template__ for item in templates]

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        custom_id = (interaction.data or {}).get("custom_id")
        if not isinstance(custom_id, str) or self._dispatched(interaction, custom_id):
            return
        log.info("interaction %s: a click on an unknown button %.120r", interaction.id,
                 custom_id)
        try:
            await interaction.response.send_message(NOT_OURS, ephemeral=True)
        except discord.HTTPException as error:  # answered after all, or too late
            log.warning("interaction %s: could not answer the click (%s)", interaction.id,
                        error)
        shown = "".join(c if c.isprintable() else "?" for c in custom_id[:100])
        await log_refusal(interaction, "button_refused", custom_id=shown)

    def _dispatched(self, interaction: discord.Interaction, custom_id: str) -> bool:
        """Whether discord.py hands this click to a button: one of ours when its custom_id
        fits a template and is on the clicked message (discord.py drops it otherwise),
        or a live view's."""
        ours = any(template.fullmatch(custom_id) for template in self.templates)
        return (ours and _on_message(interaction.message, custom_id)) or _in_a_view(
            interaction, custom_id)


def _on_message(message: discord.Message | None, custom_id: str) -> bool:
    return message is not None and any(
        getattr(child, "custom_id", None) == custom_id
        for row in message.components for child in getattr(row, "children", ()))


def _in_a_view(interaction: discord.Interaction, custom_id: str) -> bool:
    """A button of a View sent with a message (a confirmation, say): discord.py answers it.
    The same lookup as discord.py's ViewStore.dispatch_view, which offers no public one."""
    views = interaction.client._connection._view_store._views
    key = (interaction.data.get("component_type"), custom_id)
    message_id = interaction.message.id if interaction.message is not None else None
    return key in views.get(message_id, {}) or key in views.get(None, {})
