"""The prompt language: Midjourney-style flags after the prompt text.

    a red fox in snow --ar 16:9 --no text, watermark --seed 42

The flags and their readers are in bot.prompt_flags, multi-prompts (`a::2 b`) in
bot.multiprompt; permutations (`{a, b}`, bot.permutations) are expanded before parsing.
parse_prompt splits the text from its flags and checks each value on its own;
build_request turns a parsed prompt into a GenerationRequest for one model of
the registry. Both raise only PromptError, whose message is written for the
member who typed the prompt. Pure Python, so the bot and the CLI import it cheaply.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.multiprompt import parse_parts
from bot.prompt_flags import (
    FLAGS,
    MAX_CHAOS,
    Chunk,
    PromptError,
    canonical_name,
    quote,
    read_flag,
    split_flags,
)
from generation.contract import (
    MAX_SEED,
    MAX_STEPS,
    GenerationRequest,
    InvalidRequest,
    JobKind,
    PromptPart,
)
from generation.registry import ModelSpec, Registry, UnknownModel
from generation.sizes import snap_to_bucket

NUM_IMAGES = 4
DEFAULT_STYLIZE = 100


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
    parts: tuple[PromptPart, ...] = ()  # a multi-prompt's parts (`hot dog::2 animal::-0.5`)
    stop: int | None = None  # --stop: the percent of the steps that run
    lane: str | None = None  # --fast, --relax or --turbo


# -- parse_prompt -----------------------------------------------------------

def parse_prompt(text: str, model_names: Sequence[str] = ()) -> ParsedPrompt:
    """Split text into the prompt and its flags, checking each flag's value; model_names
    are named to a member who asks for a Midjourney version."""
    prompt, chunks = split_flags(text)
    image_url, prompt = _leading_link(prompt)
    if not prompt:
        raise PromptError("Write what to draw before any flags, "
                          "like `a red fox in snow --ar 16:9`.")
    return ParsedPrompt(text=prompt, image_url=image_url, parts=parse_parts(prompt),
                        **_flag_values(chunks, model_names))


def _flag_values(chunks: list[Chunk], model_names: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    first: dict[str, tuple[str, Chunk]] = {}  # field → the flag that set it, and as typed
    for chunk in chunks:
        canonical = canonical_name(chunk, model_names)
        flag = FLAGS[canonical]
        if flag.field in first:
            raise PromptError(_given_twice(chunk, canonical, *first[flag.field]))
        first[flag.field] = canonical, chunk
        values[flag.field] = read_flag(chunk, flag)
    return values


def _leading_link(prompt: str) -> tuple[str | None, str]:
    """An image link at the start of the prompt (Midjourney's place for it), and the rest."""
    links = list(re.finditer(r"(?:^|\s)(https?://\S+)", prompt))
    if not links or links[0].start() != 0:
        return None, prompt
    if len(links) > 1:
        raise PromptError("Give one image link, at the start of the prompt: "
                          f"{quote(links[1].group(1))} is a second one.")
    return links[0].group(1), prompt[links[0].end():].strip()


def _given_twice(chunk: Chunk, canonical: str, first_canonical: str, first: Chunk) -> str:
    if canonical != first_canonical:  # --fast --relax: two flags of one setting
        return (f"{first.typed} and {chunk.typed} both choose the lane: give one of --fast, "
                "--relax or --turbo.")
    also = "" if chunk.typed == first.typed else f" (also as {first.typed})"
    return f"{chunk.typed} is given twice{also}: give each flag once."


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
            parent_image=image_prompt, prompt_parts=parsed.parts, stop=parsed.stop,
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
        raise PromptError(f"The model option says {quote(option)} but --model says "
                          f"{quote(parsed.model)}: use one of them.")
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
