"""The prompt language: Midjourney-style flags after the prompt text.

    a red fox in snow --ar 16:9 --no text, watermark --seed 42

parse_prompt splits the text from its flags and checks each value on its own;
build_request turns a parsed prompt into a GenerationRequest for one model of
the registry. Both raise only PromptError, whose message is written for the
member who typed the prompt. Pure Python, so the bot and the CLI import it cheaply.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from generation.contract import (
    MAX_ASPECT,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STEPS,
    GenerationRequest,
    InvalidRequest,
    JobKind,
)
from generation.registry import ModelSpec, Registry, UnknownModel
from generation.sizes import snap_to_bucket

NUM_IMAGES = 4
MAX_CHAOS = 100
MAX_STYLIZE = 1000
DEFAULT_STYLIZE = 100
MAX_REPEAT = 4
QUALITIES = (0.25, 0.5, 1.0, 2.0)
MAX_IMAGE_WEIGHT = 3.0


class PromptError(ValueError):
    """The prompt cannot be drawn as written; the message tells the member what to change."""


@dataclass(frozen=True)
class ParsedPrompt:
    """A prompt and its flags, each value already checked on its own."""

    text: str  # the prompt without flags, stripped
    aspect: tuple[int, int] | None = None
    seed: int | None = None
    negative: tuple[str, ...] = ()  # the items of --no
    chaos: int | None = None
    quality: float | None = None
    stylize: int | None = None
    tile: bool = False
    repeat: int = 1
    raw: bool = False  # --style raw
    steps: int | None = None
    cfg: float | None = None
    model: str | None = None
    image_url: str | None = None  # an image link before the text: an image prompt
    image_weight: float | None = None  # --iw: how much the image prompt counts


# -- reading one value ------------------------------------------------------

class _BadValue(Exception):
    """A value reader's complaint; _read_flag adds the flag and its allowed form."""


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
class _Flag:
    field: str  # the ParsedPrompt attribute it sets
    form: str  # the allowed form, quoted by every message about this flag
    read: Callable[[str], Any] | None  # None: the flag takes no value
    aliases: tuple[str, ...] = ()
    takes_list: bool = False  # reads every token up to the next flag, not just one


_FLAGS = {
    "ar": _Flag("aspect", "--ar W:H, two whole numbers with a ratio from 1:4 to 4:1, "
                "like --ar 16:9", _aspect, ("aspect",)),
    "seed": _Flag("seed", f"--seed N, a whole number from 0 to {MAX_SEED}",
                  _in_range(0, MAX_SEED, _whole_number)),
    "no": _Flag("negative", "--no A, B, a comma-separated list of things to leave out",
                _negatives, takes_list=True),
    "chaos": _Flag("chaos", f"--chaos N, a whole number from 0 to {MAX_CHAOS}",
                   _in_range(0, MAX_CHAOS, _whole_number), ("c",)),
    "quality": _Flag("quality", "--quality Q, one of .25, .5, 1 or 2", _quality, ("q",)),
    "stylize": _Flag("stylize", f"--stylize N, a whole number from 0 to {MAX_STYLIZE}",
                     _in_range(0, MAX_STYLIZE, _whole_number), ("s",)),
    "tile": _Flag("tile", "--tile, with no value", None),
    "repeat": _Flag("repeat", f"--repeat N, a whole number from 1 to {MAX_REPEAT}",
                    _in_range(1, MAX_REPEAT, _whole_number), ("r",)),
    "style": _Flag("raw", "--style raw", _style),
    "steps": _Flag("steps", f"--steps N, a whole number from 1 to {MAX_STEPS}",
                   _in_range(1, MAX_STEPS, _whole_number)),
    "cfg": _Flag("cfg", f"--cfg X, a number from 0 to {MAX_GUIDANCE:g}",
                 _in_range(0, MAX_GUIDANCE, _decimal)),
    "model": _Flag("model", "--model NAME, one model name", _model_name),
    "iw": _Flag("image_weight", f"--iw N, a number from 0 to {MAX_IMAGE_WEIGHT:g} (how much "
                "the image prompt counts; 1 by default)",
                _in_range(0, MAX_IMAGE_WEIGHT, _decimal)),
}
_NAMES = {name: canonical for canonical, flag in _FLAGS.items()
          for name in (canonical, *flag.aliases)}

# A flag starts at the start of the text or after whitespace, so `fox--ar` and
# `a fox — in snow` stay text. Phones turn `--` into a long dash, so those count too.
_MARKER = re.compile(r"(?:^|(?<=\s))(?:--|[—–])(?=[A-Za-z])")


class _Chunk(NamedTuple):
    typed: str  # the flag as the member wrote it, dashes included: `—AR`
    name: str  # without the dashes
    tokens: list[str]  # its value, split on whitespace


def _split(text: str) -> tuple[str, list[_Chunk]]:
    """The prompt text, and each flag with the tokens up to the next flag."""
    markers = list(_MARKER.finditer(text))
    starts = [marker.start() for marker in markers] + [len(text)]
    chunks = []
    for marker, end in zip(markers, starts[1:], strict=True):
        name, *tokens = text[marker.end():end].split()
        chunks.append(_Chunk(marker.group() + name, name, tokens))
    return text[:starts[0]].strip(), chunks


# -- parse_prompt -----------------------------------------------------------

def parse_prompt(text: str) -> ParsedPrompt:
    """Split text into the prompt and its flags, checking each flag's value."""
    prompt, chunks = _split(text)
    image_url, prompt = _leading_link(prompt)
    if not prompt:
        raise PromptError("Write what to draw before any flags, "
                          "like `a red fox in snow --ar 16:9`.")
    values: dict[str, Any] = {}
    first_typed: dict[str, str] = {}
    for chunk in chunks:
        canonical = _canonical_name(chunk)
        if canonical in first_typed:
            raise PromptError(_given_twice(chunk.typed, first_typed[canonical]))
        first_typed[canonical] = chunk.typed
        flag = _FLAGS[canonical]
        values[flag.field] = _read_flag(chunk, flag)
    return ParsedPrompt(text=prompt, image_url=image_url, **values)


def _leading_link(prompt: str) -> tuple[str | None, str]:
    """An image link at the start of the prompt (Midjourney's place for it), and the rest."""
    links = list(re.finditer(r"(?:^|\s)(https?://\S+)", prompt))
    if not links or links[0].start() != 0:
        return None, prompt
    if len(links) > 1:
        raise PromptError("Give one image link, at the start of the prompt: "
                          f"{_quote(links[1].group(1))} is a second one.")
    return links[0].group(1), prompt[links[0].end():].strip()


def _canonical_name(chunk: _Chunk) -> str:
    canonical = _NAMES.get(chunk.name.lower())
    if canonical is None:
        close = difflib.get_close_matches(chunk.name.lower(), _NAMES, n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        known = ", ".join(f"--{name}" for name in _FLAGS)
        raise PromptError(f"Unknown flag {_clip(chunk.typed)}{hint}: the flags are {known}.")
    return canonical


def _given_twice(typed: str, first: str) -> str:
    also = "" if typed == first else f" (also as {first})"
    return f"{typed} is given twice{also}: give each flag once."


def _read_flag(chunk: _Chunk, flag: _Flag) -> Any:
    typed, tokens = chunk.typed, chunk.tokens
    if flag.read is None:
        if tokens:
            raise PromptError(_extra_tokens(typed, "takes no value", tokens))
        return True
    if not tokens:
        raise PromptError(f"{typed} needs a value: use {flag.form}.")
    value = " ".join(tokens) if flag.takes_list else tokens[0]
    try:
        result = flag.read(value)
    except _BadValue as bad:
        raise PromptError(f"{typed} value {_quote(value)} {bad}: use {flag.form}.") from None
    if len(tokens) > 1 and not flag.takes_list:
        raise PromptError(_extra_tokens(typed, "takes one value", tokens[1:]))
    return result


def _extra_tokens(typed: str, takes: str, extra: list[str]) -> str:
    return (f"{typed} {takes}, but {_quote(' '.join(extra))} follows it: "
            "flags go at the end, after the prompt.")


def _clip(text: str, limit: int = 40) -> str:
    # Messages go back to the chat; a pasted essay should not be echoed whole.
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _quote(text: str) -> str:
    return repr(_clip(text))  # repr shows stray control characters as escapes


# -- build_request ----------------------------------------------------------

def quality_steps(quality: float, steps: int) -> int:
    """Steps for --quality q: the model's default steps times q, at least 1.

    q is .25, .5, 1 or 2, so --quality 2 spends twice the default steps and .25 a quarter.
    """
    scaled = max(1, round(steps * quality))
    if scaled > MAX_STEPS:
        raise PromptError(f"--quality {quality:g} would take {scaled} steps on this model; "
                          f"a job may take at most {MAX_STEPS}: use a lower --quality.")
    return scaled


def stylize_guidance(stylize: int, guidance: float) -> float:
    """Guidance for --stylize s, relative to the model's default guidance g.

    As in Midjourney, higher stylize lets the model stray further from the prompt:
    s = 100 (the default) keeps g, s = 0 gives 1.5·g, s = 1000 gives 0.4·g,
    and it changes linearly between those points.
    """
    if stylize <= DEFAULT_STYLIZE:
        return guidance * (1 + 0.5 * (DEFAULT_STYLIZE - stylize) / 100)
    return guidance * (1 - 0.6 * (stylize - DEFAULT_STYLIZE) / 900)


def chaos_guidance(chaos: int, guidance: float) -> float:
    """Guidance after --chaos c (0 to 100): lowered by up to half, so the images vary more."""
    return guidance * (1 - 0.5 * chaos / MAX_CHAOS)


def build_request(parsed: ParsedPrompt, registry: Registry, *, model: str | None = None,
                  default_model: str | None = None, image_prompt: str | None = None,
                  kind: JobKind = JobKind.IMAGINE, user_id: int | None = None,
                  guild_id: int | None = None, channel_id: int | None = None,
                  rng: random.Random | None = None) -> GenerationRequest:
    """The request that draws parsed; `model` is the model option given beside the prompt,
    `default_model` the member's or server's choice when neither names one, and
    `image_prompt` the blob key the image prompt will be stored under.

    Repeat is not part of a request: callers read parsed.repeat and send that many.
    """
    name, spec = _model_spec(parsed, registry, model, default_model)
    _check_conflicts(parsed)
    if parsed.image_weight is not None and image_prompt is None:
        raise PromptError("--iw sets how much an image prompt counts: attach an image, or "
                          "put a Discord image link first in the prompt.")
    width, height = _size(parsed, spec)
    try:
        return GenerationRequest(
            kind=kind, prompt=parsed.text, model=name, width=width, height=height,
            steps=_steps(parsed, spec), guidance=_guidance(parsed, spec),
            sampler=spec.sampler, seed=_seed(parsed, rng),
            negative_prompt=_negative_prompt(parsed, spec), num_images=NUM_IMAGES,
            tile=parsed.tile, user_id=user_id, guild_id=guild_id, channel_id=channel_id,
            parent_image=image_prompt,
            strength=None if image_prompt is None else image_prompt_strength(parsed))
    except InvalidRequest as error:
        raise PromptError(str(error)) from error


def image_prompt_strength(parsed: ParsedPrompt) -> float:
    """img2img strength for an image prompt: --iw w gives 1 / (1 + w), so the default
    w = 1 keeps half the image's structure, w = 3 three quarters, w = 0 none of it."""
    weight = 1.0 if parsed.image_weight is None else parsed.image_weight
    return round(1 / (1 + weight), 4)


def _model_spec(parsed: ParsedPrompt, registry: Registry, option: str | None,
                default: str | None) -> tuple[str, ModelSpec]:
    if option is not None and parsed.model is not None and option != parsed.model:
        raise PromptError(f"The model option says {_quote(option)} but --model says "
                          f"{_quote(parsed.model)}: use one of them.")
    name = next((n for n in (option, parsed.model, default) if n is not None),
                registry.default)
    try:
        return name, registry.get(name)
    except UnknownModel as error:
        raise PromptError(str(error)) from error


def _check_conflicts(parsed: ParsedPrompt) -> None:
    if parsed.steps is not None and parsed.quality is not None:
        raise PromptError("--steps and --quality both set the number of steps: "
                          "use one of them.")
    if parsed.cfg is not None and parsed.stylize is not None:
        raise PromptError("--cfg and --stylize both set how closely the image follows "
                          "the prompt: use one of them.")


def _size(parsed: ParsedPrompt, spec: ModelSpec) -> tuple[int, int]:
    if parsed.aspect is None:
        return spec.base_resolution, spec.base_resolution
    return snap_to_bucket(*parsed.aspect, spec.base_resolution)


def _steps(parsed: ParsedPrompt, spec: ModelSpec) -> int:
    if parsed.steps is not None:
        return parsed.steps
    if parsed.quality is not None:
        return quality_steps(parsed.quality, spec.steps)
    return spec.steps


def _guidance(parsed: ParsedPrompt, spec: ModelSpec) -> float:
    if parsed.cfg is not None:
        guidance = parsed.cfg
    elif parsed.stylize is not None:
        guidance = stylize_guidance(parsed.stylize, spec.guidance)
    else:
        guidance = spec.guidance
    if parsed.chaos is not None:
        guidance = chaos_guidance(parsed.chaos, guidance)
    return round(guidance, 3)


def _seed(parsed: ParsedPrompt, rng: random.Random | None) -> int:
    if parsed.seed is not None:
        return parsed.seed
    return (rng or random.SystemRandom()).randrange(0, MAX_SEED + 1)


def _negative_prompt(parsed: ParsedPrompt, spec: ModelSpec) -> str:
    # --style raw drops the model's default negative prompt, keeping only the member's --no.
    defaults = () if parsed.raw else (spec.negative_prompt,)
    return ", ".join(part for part in (*defaults, *parsed.negative) if part)
