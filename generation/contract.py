"""The job contract: what the bot asks of a GPU worker, and what comes back.

Both sides validate: the bot to give a member a clear message, the worker
because the queue is an input too. Plain frozen dataclasses with a JSON
round-trip; no torch here, so the bot can import this module cheaply.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from generation.job_kinds import (
    INPAINT_KINDS,
    MAX_ASPECT,
    MAX_EXPAND,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_PART_WEIGHT,
    MAX_PROMPT_PARTS,
    MAX_REF_WEIGHT,
    MAX_SEED,
    MAX_SIDE,
    MAX_SNOWFLAKE,
    MAX_STEPS,
    MAX_STOP,
    MAX_STYLE_REFS,
    MIN_BLEND,
    MIN_SIDE,
    MIN_STOP,
    OUTPAINT_KINDS,
    PARENT_KINDS,
    PROMPT_MAX_CHARS,
    SAMPLERS,
    SIZE_STEP,
    VARIATION_STRENGTH,
    InvalidRequest,
    JobKind,
    check_edit_fields,
    check_kind_fields,
    check_range,
    check_references,
)

# The kinds and limits live in generation/job_kinds.py; the contract is where callers
# import them from.
__all__ = [
    "INPAINT_KINDS",
    "MAX_ASPECT",
    "MAX_EXPAND",
    "MAX_GUIDANCE",
    "MAX_IMAGES",
    "MAX_PART_WEIGHT",
    "MAX_PROMPT_PARTS",
    "MAX_REF_WEIGHT",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_SNOWFLAKE",
    "MAX_STEPS",
    "MAX_STOP",
    "MAX_STYLE_REFS",
    "MIN_BLEND",
    "MIN_SIDE",
    "MIN_STOP",
    "OUTPAINT_KINDS",
    "PARENT_KINDS",
    "PROMPT_MAX_CHARS",
    "SAMPLERS",
    "SIZE_STEP",
    "VARIATION_STRENGTH",
    "GenerationRequest",
    "GenerationResult",
    "InvalidRequest",
    "JobKind",
    "PromptPart",
    "ResultImage",
    "repeat_request",
]


@dataclass(frozen=True)
class PromptPart:
    """One part of a multi-prompt and its weight: `hot dog::2` is PromptPart("hot dog", 2.0)."""

    text: str
    weight: float = 1.0

    def __post_init__(self):
        _coerce_floats(self, ("weight",))
        _check_types(self)
        _check_text("prompt_parts.text", self.text, allow_empty=False)
        check_range("prompt_parts.weight", self.weight, -MAX_PART_WEIGHT, MAX_PART_WEIGHT)


@dataclass(frozen=True)
class GenerationRequest:
    """One job: draw `num_images` images; image i uses seed + i, so any one can be re-made."""

    kind: JobKind
    prompt: str
    model: str
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str
    seed: int
    negative_prompt: str = ""
    num_images: int = 4
    tile: bool = False
    strength: float | None = None  # img2img strength, for variation and upscale
    parent_image: str | None = None  # blob key of the image a variation or upscale starts from
    user_id: int | None = None
    guild_id: int | None = None
    channel_id: int | None = None
    # A multi-prompt's parts; the engine draws their weighted embeddings instead of `prompt`,
    # which stays the text as typed (it is echoed and exported). Empty: draw `prompt`.
    prompt_parts: tuple[PromptPart, ...] = ()
    stop: int | None = None  # --stop: run only this percent of the denoising steps
    # vary_region: blob key of a greyscale mask at the parent's size, white = redraw.
    mask_image: str | None = None
    # zoom_out and pan: pixels added to the parent (left, top, right, bottom) at its own
    # size; the canvas is then drawn at width x height.
    expand: tuple[int, int, int, int] | None = None
    # --sref (and /blend's images): blob keys of style references, their IP-Adapter
    # embeddings averaged; style_weight is --sw. --oref/--ow: one object or character
    # reference and its weight. Weights are Midjourney's 0 to 1000; the engine maps them.
    style_refs: tuple[str, ...] = ()
    style_weight: int = 100
    object_ref: str | None = None
    object_weight: int = 100

    def __post_init__(self):
        object.__setattr__(self, "prompt_parts", tuple(self.prompt_parts))
        object.__setattr__(self, "style_refs", tuple(self.style_refs))
        if isinstance(self.expand, list):  # JSON has no tuples
            object.__setattr__(self, "expand", tuple(self.expand))
        _coerce_floats(self, ("guidance", "strength"))
        _check_types(self)
        _check_text("prompt", self.prompt, allow_empty=self.kind is JobKind.BLEND)
        _check_text("negative_prompt", self.negative_prompt, allow_empty=True)
        check_range("steps", self.steps, 1, MAX_STEPS)
        check_range("guidance", self.guidance, 0.0, MAX_GUIDANCE)
        check_range("seed", self.seed, 0, MAX_SEED)
        check_range("num_images", self.num_images, 1, MAX_IMAGES)
        _check_size(self.width, self.height)
        if self.sampler not in SAMPLERS:
            raise InvalidRequest("sampler", self.sampler, f"allowed: {', '.join(SAMPLERS)}")
        if not self.model:
            raise InvalidRequest("model", self.model, "a model name is required")
        for name in ("user_id", "guild_id", "channel_id"):
            if getattr(self, name) is not None:
                check_range(name, getattr(self, name), 0, MAX_SNOWFLAKE)
        check_kind_fields(self)
        _check_parts(self.prompt_parts)
        if self.stop is not None:
            check_range("stop", self.stop, MIN_STOP, MAX_STOP)
        check_edit_fields(self)
        check_references(self)

    @property
    def seeds(self) -> list[int]:
        """The seed of each image, in slot order (slot 1 first)."""
        return [self.seed + i for i in range(self.num_images)]

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one pipeline call."""
        kind = JobKind.IMAGINE if self.kind is JobKind.REROLL else self.kind  # same computation
        # One call takes one IP-Adapter scale, and references or none.
        references = (bool(self.style_refs), self.object_ref is not None,
                      self.style_weight if self.style_refs else None,
                      self.object_weight if self.object_ref else None)
        return (self.model, kind, self.width, self.height, self.steps, self.guidance,
                self.sampler, self.tile, self.strength, self.stop, references)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (the kind as its text)."""
        return asdict(self) | {"kind": str(self.kind)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        data = _known_fields(cls, data)
        parts = _parts_from_json(data.get("prompt_parts", ()))
        return cls(**data | {"kind": _parse_kind(data["kind"]), "prompt_parts": parts})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> GenerationRequest:
        return cls.from_dict(_load_object(text))


@dataclass(frozen=True)
class ResultImage:
    """One finished image in the blob store."""

    slot: int  # 1-based position in the grid
    seed: int
    key: str
    width: int
    height: int
    sha256: str
    # The image classifier's verdict (generation/safety.py): flagged, and the label → score
    # of each detection that made it so.
    flagged: bool = False
    labels: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        _check_types(self)
        _check_labels(self.labels)
        check_range("slot", self.slot, 1, MAX_IMAGES)
        check_range("seed", self.seed, 0, MAX_SEED + MAX_IMAGES - 1)  # seed + slot - 1
        if not self.key:
            raise InvalidRequest("key", self.key, "a blob key is required")
        if len(self.sha256) != 64 or not set(self.sha256) <= set("0123456789abcdef"):
            raise InvalidRequest("sha256", self.sha256, "64 lowercase hex digits")


@dataclass(frozen=True)
class GenerationResult:
    """What a worker reports for one finished job."""

    job_id: str
    images: tuple[ResultImage, ...]
    gpu_ms: int
    encode_ms: int
    batch_size: int
    classify_ms: int = 0  # the image classifier's time for this job's images

    def __post_init__(self):
        object.__setattr__(self, "images", tuple(self.images))
        _check_types(self)
        if not self.job_id:
            raise InvalidRequest("job_id", self.job_id, "a job id is required")
        check_range("images", len(self.images), 1, MAX_IMAGES)
        if len({i.slot for i in self.images}) != len(self.images) or len(
                {i.key for i in self.images}) != len(self.images):
            raise InvalidRequest("images", [i.slot for i in self.images],
                                 "each image has its own slot and key")
        check_range("gpu_ms", self.gpu_ms, 0, 2**31 - 1)  # PostgreSQL integer
        check_range("encode_ms", self.encode_ms, 0, 2**31 - 1)
        check_range("classify_ms", self.classify_ms, 0, 2**31 - 1)
        check_range("batch_size", self.batch_size, 1, 1024)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> GenerationResult:
        data = _load_object(text)
        if not isinstance(data.get("images"), list):
            raise InvalidRequest("images", data.get("images"), "a list of images")
        data["images"] = tuple(_image_from_dict(item) for item in data["images"])
        return cls(**_known_fields(cls, data))


def _image_from_dict(item: Any) -> ResultImage:
    if not isinstance(item, dict):
        raise InvalidRequest("images", item, "each image is a JSON object")
    return ResultImage(**_known_fields(ResultImage, item))


# -- validation helpers ------------------------------------------------------

_TYPES = {
    "kind": JobKind,
    "prompt": str, "negative_prompt": str, "model": str, "sampler": str,
    "width": int, "height": int, "steps": int, "seed": int, "num_images": int,
    "guidance": float, "strength": (float, type(None)), "tile": bool,
    "parent_image": (str, type(None)),
    "user_id": (int, type(None)), "guild_id": (int, type(None)), "channel_id": (int, type(None)),
    "slot": int, "key": str, "sha256": str, "job_id": str, "images": tuple,
    "gpu_ms": int, "encode_ms": int, "batch_size": int, "classify_ms": int,
    "flagged": bool, "labels": dict,
    "prompt_parts": tuple, "stop": (int, type(None)), "text": str, "weight": float,
    "mask_image": (str, type(None)), "expand": (tuple, type(None)), "style_refs": tuple,
    "style_weight": int, "object_ref": (str, type(None)), "object_weight": int,
}


def _check_types(obj: Any) -> None:
    for f in fields(obj):
        value, expected = getattr(obj, f.name), _TYPES[f.name]
        wrong_bool = isinstance(value, bool) and expected is not bool
        if wrong_bool or not isinstance(value, expected):
            raise InvalidRequest(f.name, value, f"must be {_type_name(expected)}")


def _type_name(expected: Any) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false",
             tuple: "a list", dict: "an object", JobKind: "one of " + ", ".join(JobKind)}
    if isinstance(expected, tuple):
        return names[expected[0]] + " or null"
    return names[expected]


def _coerce_floats(obj: Any, names: tuple[str, ...]) -> None:
    # JSON writes 7.0 as 7; a whole number is a fine float (but a bool is not).
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, int) and not isinstance(value, bool):
            object.__setattr__(obj, name, float(value))


def _check_text(name: str, text: str, allow_empty: bool) -> None:
    if not allow_empty and not text.strip():
        raise InvalidRequest(name, text, "must not be empty")
    if len(text) > PROMPT_MAX_CHARS:
        raise InvalidRequest(name, text, f"at most {PROMPT_MAX_CHARS} characters, got {len(text)}")
    bad = next((c for c in text if _is_forbidden_char(c)), None)
    if bad is not None:
        raise InvalidRequest(name, text, f"contains the control character U+{ord(bad):04X}; "
                             "plain text only (tabs and line breaks are fine)")


def _is_forbidden_char(char: str) -> bool:
    # Cc = control characters (NUL included), Cs = lone surrogates that UTF-8 cannot carry.
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cs")


def _check_labels(labels: dict) -> None:
    for label, score in labels.items():
        number = isinstance(score, int | float) and not isinstance(score, bool)
        if not isinstance(label, str) or not label or not number or not 0 <= score <= 1:
            raise InvalidRequest("labels", {label: score}, "each label is text with a score "
                                 "from 0 to 1")


def _check_size(width: int, height: int) -> None:
    for name, side in (("width", width), ("height", height)):
        if side % SIZE_STEP or not MIN_SIDE <= side <= MAX_SIDE:
            raise InvalidRequest(name, side, f"a multiple of {SIZE_STEP} from {MIN_SIDE} "
                                 f"to {MAX_SIDE}")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InvalidRequest("size", f"{width}x{height}", "aspect ratio between 1:4 and 4:1")


def _check_parts(parts: tuple[PromptPart, ...]) -> None:
    if len(parts) > MAX_PROMPT_PARTS:
        raise InvalidRequest("prompt_parts", len(parts), f"at most {MAX_PROMPT_PARTS} parts")
    if not all(isinstance(part, PromptPart) for part in parts):
        raise InvalidRequest("prompt_parts", parts, "each part is a PromptPart")
    total = sum(part.weight for part in parts)
    if parts and not total > 0:  # Midjourney's rule: negative weights, but a positive sum
        raise InvalidRequest("prompt_parts", [p.weight for p in parts],
                             f"the weights add up to {total:g}; they must add up to more than 0")


def _parts_from_json(value: Any) -> tuple[PromptPart, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, dict) for v in value):
        raise InvalidRequest("prompt_parts", value, "a list of {text, weight} objects")
    return tuple(PromptPart(**_known_fields(PromptPart, item)) for item in value)


def _load_object(text: str | bytes) -> dict:
    try:
        data = json.loads(text)
    except (ValueError, TypeError, RecursionError) as error:
        raise InvalidRequest("json", text, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InvalidRequest("json", data, "must be a JSON object")
    return data


def _known_fields(cls: type, data: dict) -> dict:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise InvalidRequest("json", unknown, f"unknown field(s); known: {known}")
    required = {f.name for f in fields(cls) if f.default is MISSING}
    missing = sorted(required - set(data))
    if missing:
        raise InvalidRequest("json", missing, "required field(s) missing")
    return data


def _parse_kind(value: Any) -> JobKind:
    try:
        return JobKind(value)
    except ValueError:
        raise InvalidRequest("kind", value, "allowed: " + ", ".join(JobKind)) from None


def repeat_request(request: GenerationRequest, index: int) -> GenerationRequest:
    """Repeat k of a prompt (--repeat) starts its seeds after the images of the repeats
    before it, so every image of every repeat can be re-made from its own seed."""
    return replace(request, seed=(request.seed + MAX_IMAGES * index) % (MAX_SEED + 1))
