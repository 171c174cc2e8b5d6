"""The flags of the prompt language: their table, their value readers, and the flags of
Midjourney that dreamloop refuses with what it offers instead.

bot.prompt reads a prompt with these. Everything here raises only PromptError, whose message
is written for the member (the value readers' _BadValue becomes one in read_flag).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from generation.contract import MAX_ASPECT, MAX_GUIDANCE, MAX_SEED, MAX_STEPS, MAX_STOP, MIN_STOP

MAX_CHAOS = 100
MAX_STYLIZE = 1000
MAX_REPEAT = 4
QUALITIES = (0.25, 0.5, 1.0, 2.0)
MAX_IMAGE_WEIGHT = 3.0
LANES = ("fast", "relax", "turbo")


class PromptError(ValueError):
    """The prompt cannot be drawn as written; the message tells the member what to change."""


# -- reading one value ------------------------------------------------------

class _BadValue(Exception):
    """A value reader's complaint; read_flag adds the flag and its allowed form."""


_NOT_VALID = "is not valid"
_OUT_OF_RANGE = "is out of range"
_LONGEST_NUMBER = 30  # digits; int() refuses very long digit strings, and no flag needs many


def _whole_number(token: str) -> int:
    # [0-9] rather than \d, which also matches digits of other scripts. A leading
    # minus is read so that -1 gets the out-of-range message, which is the helpful one.
    if not re.fullmatch(r"-?[0-9]+", token):
        raise _BadValue(_NOT_VALID)
    digits = token.lstrip("-").lstrip("0") or "0"
    if len(digits) > _LONGEST_NUMBER:
        raise _BadValue(_OUT_OF_RANGE)
    return -int(digits) if token.startswith("-") else int(digits)


def _decimal(token: str) -> float:
    # Plain decimals only: float() would also take nan, inf, 1e3 and 1_000.
    if not re.fullmatch(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", token):
        raise _BadValue(_NOT_VALID)
    return float(token)


def _in_range(low: float, high: float, read: Callable[[str], Any]) -> Callable[[str], Any]:
    def read_in_range(token: str) -> Any:
        value = read(token)
        if not low <= value <= high:
            raise _BadValue(_OUT_OF_RANGE)
        return value
    return read_in_range


def _aspect(token: str) -> tuple[int, int]:
    width, colon, height = token.partition(":")
    if not colon:
        raise _BadValue(_NOT_VALID)
    w, h = _whole_number(width), _whole_number(height)
    if min(w, h) < 1 or max(w, h) > MAX_ASPECT * min(w, h):
        raise _BadValue(_OUT_OF_RANGE)
    return w, h


def _quality(token: str) -> float:
    value = _decimal(token)
    if value not in QUALITIES:  # compared as numbers, so .5, 0.5 and 0.50 are all one
        raise _BadValue("is not one of the allowed values")
    return value


def _style(token: str) -> bool:
    if token.lower() != "raw":
        raise _BadValue(_NOT_VALID)
    return True


def _model_name(token: str) -> str:
    return token  # checked against the registry in build_request, which has it


def _negatives(text: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(","))
    items = tuple(item for item in items if item)
    if not items:
        raise _BadValue(_NOT_VALID)
    return items


# -- the flags --------------------------------------------------------------

@dataclass(frozen=True)
class Flag:
    field: str  # the ParsedPrompt attribute it sets
    form: str  # the allowed form, quoted by every message about this flag
    read: Callable[[str], Any] | None  # None: the flag takes no value
    aliases: tuple[str, ...] = ()
    takes_list: bool = False  # reads every token up to the next flag, not just one
    value: Any = True  # what a flag without a value sets its field to


def _lane(name: str) -> Flag:
    return Flag("lane", f"--{name}, with no value (one of --fast, --relax, --turbo)", None,
                value=name)


FLAGS = {
    "ar": Flag("aspect", "--ar W:H, two whole numbers with a ratio from 1:4 to 4:1, "
                "like --ar 16:9", _aspect, ("aspect",)),
    "seed": Flag("seed", f"--seed N, a whole number from 0 to {MAX_SEED}",
                  _in_range(0, MAX_SEED, _whole_number)),
    "no": Flag("negative", "--no A, B, a comma-separated list of things to leave out",
                _negatives, takes_list=True),
    "chaos": Flag("chaos", f"--chaos N, a whole number from 0 to {MAX_CHAOS}",
                   _in_range(0, MAX_CHAOS, _whole_number), ("c",)),
    "quality": Flag("quality", "--quality Q, one of .25, .5, 1 or 2", _quality, ("q",)),
    "stylize": Flag("stylize", f"--stylize N, a whole number from 0 to {MAX_STYLIZE}",
                     _in_range(0, MAX_STYLIZE, _whole_number), ("s",)),
    "tile": Flag("tile", "--tile, with no value", None),
    "repeat": Flag("repeat", f"--repeat N, a whole number from 1 to {MAX_REPEAT}",
                    _in_range(1, MAX_REPEAT, _whole_number), ("r",)),
    "style": Flag("raw", "--style raw", _style),
    "steps": Flag("steps", f"--steps N, a whole number from 1 to {MAX_STEPS}",
                   _in_range(1, MAX_STEPS, _whole_number)),
    "cfg": Flag("cfg", f"--cfg X, a number from 0 to {MAX_GUIDANCE:g}",
                 _in_range(0, MAX_GUIDANCE, _decimal)),
    "model": Flag("model", "--model NAME, one model name", _model_name),
    "iw": Flag("image_weight", f"--iw N, a number from 0 to {MAX_IMAGE_WEIGHT:g} (how much "
                "the image prompt counts; 1 by default)",
                _in_range(0, MAX_IMAGE_WEIGHT, _decimal)),
    "stop": Flag("stop", f"--stop N, a whole number from {MIN_STOP} to {MAX_STOP} (the percent "
                 "of the steps that run)", _in_range(MIN_STOP, MAX_STOP, _whole_number)),
    **{lane: _lane(lane) for lane in LANES},
}
NAMES = {name: canonical for canonical, flag in FLAGS.items()
         for name in (canonical, *flag.aliases)}

# A flag starts at the start of the text or after whitespace, so `fox--ar` and
# `a fox — in snow` stay text. Phones turn `--` into a long dash, so those count too.
MARKER = re.compile(r"(?:^|(?<=\s))(?:--|[—–])(?=[A-Za-z])")


class Chunk(NamedTuple):
    typed: str  # the flag as the member wrote it, dashes included: `—AR`
    name: str  # without the dashes
    tokens: list[str]  # its value, split on whitespace


def split_flags(text: str) -> tuple[str, list[Chunk]]:
    """The prompt text, and each flag with the tokens up to the next flag."""
    markers = list(MARKER.finditer(text))
    starts = [marker.start() for marker in markers] + [len(text)]
    chunks = []
    for marker, end in zip(markers, starts[1:], strict=True):
        name, *tokens = text[marker.end():end].split()
        chunks.append(Chunk(marker.group() + name, name, tokens))
    return text[:starts[0]].strip(), chunks




# -- Midjourney's flags that dreamloop does not offer ---------------------------

_REFERENCES = ("{typed} ({what}) is not offered yet: the nearest is an image prompt (attach "
               "an image, or put a Discord image link first) with --iw N for how much it counts.")
_VIDEO = "{typed} is for Midjourney's videos: dreamloop draws still images only."
_OLD = ("{typed} is from an old Midjourney version: dreamloop picks models with "
        "--model NAME{models}.")
# Each refused flag (and its documented aliases): what the member gets instead. {typed} is the
# flag as typed, {models} the registry's model names. They never get a "did you mean".
_REFUSED = {
    ("v", "version", "niji"): "{typed} picks a Midjourney model: dreamloop picks one of its own "
                              "models with --model NAME{models}.",
    ("weird", "w"): "{typed} is Midjourney's: dreamloop has no weirdness setting; --chaos N "
                    "makes the four images differ more.",
    ("exp",): "{typed} (experimental aesthetics) is Midjourney's: try --stylize N for more "
              "style, or --style raw for less.",
    ("sref", "sw", "sv"): _REFERENCES.replace("{what}", "style references"),
    ("cref", "cw"): _REFERENCES.replace("{what}", "character references"),
    ("oref", "ow"): _REFERENCES.replace("{what}", "omni references"),
    ("p", "profile", "personalize"): "{typed} (personalization profiles) is Midjourney's and "
                                     "not offered: /settings me keeps your own defaults.",
    ("draft",): "{typed} is Midjourney's quick draft: use --quality .25 (a quarter of the "
                "steps) or --stop N (finish partway) for a quicker, rougher image.",
    ("video", "motion", "loop", "end", "bs"): _VIDEO,
    ("raw",): "Write {typed} as --style raw.",
    ("sameseed",): "{typed} is from an old Midjourney version: --seed N gives the same seed "
                   "to every job (image i uses N + i).",
    ("hd", "test", "testp", "creative", "uplight", "upbeta", "upanime"): _OLD,
    ("stealth", "public"): "{typed} is Midjourney's: every job here is posted in the channel "
                           "it was asked in.",
}
REFUSED = {name: message for names, message in _REFUSED.items() for name in names}


def canonical_name(chunk: Chunk, model_names: Sequence[str] = ()) -> str:
    """Our name of the flag typed, or PromptError: a refused Midjourney flag says what we offer
    instead, an unknown one lists ours (with a "did you mean" only for a near typo)."""
    name = chunk.name.lower()
    if name in NAMES:
        return NAMES[name]
    if name in REFUSED:
        models = f" ({', '.join(model_names)})" if model_names else ""
        raise PromptError(REFUSED[name].format(typed=clip(chunk.typed), models=models))
    close = suggestion(name)
    hint = f" (did you mean --{close}?)" if close else ""
    known = ", ".join(f"--{flag}" for flag in FLAGS)
    raise PromptError(f"Unknown flag {clip(chunk.typed)}{hint}: the flags are {known}.")


def suggestion(name: str) -> str | None:
    """Our flag name one typing slip away from name (two for long names), or None.

    Strict on purpose, since a wrong guess misleads: names of one or two letters (--s, --c,
    --no) are never offered, nor anything for a name shorter than three letters, nor one of
    two equally near names.
    """
    allowed = 1 if len(name) < 7 else 2
    if len(name) < 3:
        return None
    near = sorted((edits(name, ours), ours) for ours in NAMES if len(ours) >= 3)
    (distance, best), runner_up = near[0], near[1][0]
    # Two names equally near (--stylze: --style or --stylize?) is no suggestion either.
    return best if distance <= allowed and runner_up > distance else None


def edits(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn a into b."""
    before, row = None, list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            cost = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (char != other))
            if before and i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, row = row, current
    return row[-1]


# -- reading a flag's value ---------------------------------------------------

def read_flag(chunk: Chunk, flag: Flag) -> Any:
    typed, tokens = chunk.typed, chunk.tokens
    if flag.read is None:
        if tokens:
            raise PromptError(extra_tokens(typed, "takes no value", tokens))
        return flag.value
    if not tokens:
        raise PromptError(f"{typed} needs a value: use {flag.form}.")
    value = " ".join(tokens) if flag.takes_list else tokens[0]
    try:
        result = flag.read(value)
    except _BadValue as bad:
        raise PromptError(f"{typed} value {quote(value)} {bad}: use {flag.form}.") from None
    if len(tokens) > 1 and not flag.takes_list:
        raise PromptError(extra_tokens(typed, "takes one value", tokens[1:]))
    return result


def extra_tokens(typed: str, takes: str, extra: list[str]) -> str:
    return (f"{typed} {takes}, but {quote(' '.join(extra))} follows it: "
            "flags go at the end, after the prompt.")


def clip(text: str, limit: int = 40) -> str:
    # Messages go back to the chat; a pasted essay should not be echoed whole.
    return text if len(text) <= limit else text[:limit - 1] + "…"


def quote(text: str) -> str:
    return repr(clip(text))  # repr shows stray control characters as escapes
