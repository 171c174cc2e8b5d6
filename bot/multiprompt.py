"""Midjourney's multi-prompts: `hot dog::2 animal::-0.5`.

A `::` ends a part; a number right after it is that part's weight (1 when there is none), so
`space:: ship` is two parts of weight 1 and `hot dog::2 animal::-0.5` weighs hot dog four
times as much as it pushes away from animal. As in Midjourney, weights are relative (`a::2
b::2` is `a:: b::`), negative ones are allowed, and their sum must be above 0. The engine
draws the weighted mean of the parts' embeddings (generation.prompt_embeds).
"""

from __future__ import annotations

import re

from bot.prompt_flags import PromptError, quote
from generation.contract import MAX_PART_WEIGHT, MAX_PROMPT_PARTS, InvalidRequest, PromptPart

# `::` and the weight after it: a plain decimal, ended by whitespace or the end of the text.
_SEPARATOR = re.compile(r"::(?:(-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?=\s|$))?")
_EXAMPLE = "like `hot dog::2 animal::-0.5`"


def parse_parts(text: str) -> tuple[PromptPart, ...]:
    """The parts of a multi-prompt, or () when text has no `::`."""
    if "::" not in text:
        return ()
    parts, start = [], 0
    for separator in _SEPARATOR.finditer(text):
        parts += _part(text[start:separator.start()], separator.group(1), separator.group())
        start = separator.end()
    parts += _part(text[start:], None, "")
    _check(parts)
    return tuple(parts)


def _part(text: str, weight: str | None, typed: str) -> list[PromptPart]:
    text = text.strip()
    if not text:
        if weight is not None:
            raise PromptError(f"The weight {quote(typed)} follows no text: write the part "
                              f"before its weight, {_EXAMPLE}.")
        return []  # `a:: ::` or a trailing `::` adds nothing
    value = 1.0 if weight is None else float(weight)
    if abs(value) > MAX_PART_WEIGHT:
        raise PromptError(f"The weight {quote(typed)} is out of range: a weight after :: is a "
                          f"number from {-MAX_PART_WEIGHT:g} to {MAX_PART_WEIGHT:g}.")
    try:
        return [PromptPart(text, value)]
    except InvalidRequest as error:  # a control character, most often
        raise PromptError(str(error)) from None


def _check(parts: list[PromptPart]) -> None:
    if not parts:
        raise PromptError(f"Write what to draw around the `::`, {_EXAMPLE}.")
    if len(parts) > MAX_PROMPT_PARTS:
        raise PromptError(f"The prompt has {len(parts)} parts separated by `::`: at most "
                          f"{MAX_PROMPT_PARTS} are allowed.")
    total = sum(part.weight for part in parts)
    if not total > 0:
        weights = " + ".join(f"{part.weight:g}" for part in parts)
        raise PromptError(f"The weights after `::` add up to {total:g} ({weights}): "
                          "negative weights are allowed, but as in Midjourney the sum must be "
                          f"above 0, {_EXAMPLE}.")
