"""Job kinds, the contract's limits, and the rules each kind's fields follow.

Part of the job contract (generation/contract.py re-exports all of it); no torch here.
"""

from __future__ import annotations

import enum
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from generation.contract import GenerationRequest

PROMPT_MAX_CHARS = 2000
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
MAX_IMAGES = 4
SIZE_STEP = 64
MIN_SIDE, MAX_SIDE = 64, 2048
MAX_ASPECT = 4.0  # widest allowed ratio, either way (4:1 or 1:4)
MAX_SNOWFLAKE = 2**64 - 1
MAX_PROMPT_PARTS = 20  # parts of a multi-prompt (`hot dog::2 animal::-0.5`)
MAX_PART_WEIGHT = 1000.0  # either way
MIN_STOP, MAX_STOP = 10, 100  # --stop: percent of the denoising steps that run (Midjourney's range)
MAX_STYLE_REFS = 5  # --sref images (their embeddings are averaged); /blend takes 2 to 5
MIN_BLEND = 2
MAX_REF_WEIGHT = 1000  # --sw and --ow, Midjourney's 0 to 1000 (100 by default)
MAX_EXPAND = 2 * MAX_SIDE  # pixels a zoom or pan may add on one side of its parent

# diffusers scheduler names we support; generation.engine maps them to classes.
SAMPLERS = ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc", "flow_euler")

# img2img strengths of the two variation buttons (DESIGN.md: subtle ≈0.35, strong ≈0.7).
VARIATION_STRENGTH = {"subtle": 0.35, "strong": 0.7}


class JobKind(enum.StrEnum):
    IMAGINE = "imagine"
    VARIATION = "variation"
    UPSCALE = "upscale"
    REROLL = "reroll"
    VARY_REGION = "vary_region"  # inpaint the white of mask_image over the parent
    ZOOM_OUT = "zoom_out"  # the parent on a larger canvas (expand), the new border drawn
    PAN = "pan"  # the canvas extended on one side (expand), the new strip drawn
    BLEND = "blend"  # 2 to 5 images (style_refs) mixed through the IP-Adapter; no parent


# Kinds that start from a parent image (img2img or inpainting).
PARENT_KINDS = (JobKind.VARIATION, JobKind.UPSCALE, JobKind.VARY_REGION, JobKind.ZOOM_OUT,
                JobKind.PAN)
# Kinds that redraw only part of the parent (a mask: drawn, or the outpainted border).
INPAINT_KINDS = (JobKind.VARY_REGION, JobKind.ZOOM_OUT, JobKind.PAN)
OUTPAINT_KINDS = (JobKind.ZOOM_OUT, JobKind.PAN)


class InvalidRequest(ValueError):
    """A field of a request or result is not allowed; the message says which and why."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field} is {_show(value)}: {allowed}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:  # also false for NaN
        raise InvalidRequest(name, value, f"allowed {low} to {high}")


def check_kind_fields(request: GenerationRequest) -> None:
    # Variations and upscales are img2img from a parent image. Imagine and reroll start from
    # noise, or, with an image prompt, are img2img from it: a parent and a strength, or neither.
    kind = request.kind
    needs_parent = kind in PARENT_KINDS
    if needs_parent and not request.parent_image:
        raise InvalidRequest("parent_image", request.parent_image,
                             f"a {kind} needs the blob key of its parent image")
    if request.parent_image is None and request.strength is not None:
        raise InvalidRequest("strength", request.strength,
                             f"only a job with a parent image has a strength, not this {kind}")
    if request.parent_image is not None:
        _check_strength(request)
    if kind is JobKind.UPSCALE and request.num_images != 1:
        raise InvalidRequest("num_images", request.num_images, "an upscale makes exactly 1 image")


def check_edit_fields(request: GenerationRequest) -> None:
    kind = request.kind
    if (request.mask_image is not None) != (kind is JobKind.VARY_REGION):
        raise InvalidRequest("mask_image", request.mask_image, "a vary_region job needs the "
                             "blob key of its mask, and only a vary_region job has one")
    if (request.expand is not None) != (kind in OUTPAINT_KINDS):
        raise InvalidRequest("expand", request.expand, "zoom_out and pan jobs need the pixels "
                             "added (left, top, right, bottom), and only they have them")
    if request.expand is not None:
        _check_expand(request.expand, kind)
    if kind is JobKind.BLEND and request.parent_image is not None:
        raise InvalidRequest("parent_image", request.parent_image, "a blend has no parent "
                             "image: its images are style_refs")


def _check_expand(expand: tuple, kind: JobKind) -> None:
    sides = [side for side in expand if isinstance(side, int) and not isinstance(side, bool)]
    if len(expand) != 4 or len(sides) != 4 or not all(0 <= s <= MAX_EXPAND for s in sides):
        raise InvalidRequest("expand", expand, f"four whole numbers (left, top, right, "
                             f"bottom) from 0 to {MAX_EXPAND}")
    grown = sum(side > 0 for side in sides)
    if grown == 0 or (kind is JobKind.PAN and grown != 1):
        wanted = "exactly one side" if kind is JobKind.PAN else "at least one side"
        raise InvalidRequest("expand", expand, f"a {kind} grows {wanted}")


def check_references(request: GenerationRequest) -> None:
    refs = request.style_refs
    low = MIN_BLEND if request.kind is JobKind.BLEND else 0
    if not low <= len(refs) <= MAX_STYLE_REFS:
        raise InvalidRequest("style_refs", len(refs), f"{low} to {MAX_STYLE_REFS} images "
                             f"for a {request.kind}")
    if not all(isinstance(ref, str) and ref for ref in refs):
        raise InvalidRequest("style_refs", refs, "each is the blob key of an image")
    if request.object_ref == "":
        raise InvalidRequest("object_ref", "", "the blob key of an image, or null")
    check_range("style_weight", request.style_weight, 0, MAX_REF_WEIGHT)
    check_range("object_weight", request.object_weight, 0, MAX_REF_WEIGHT)


def _check_strength(request: GenerationRequest) -> None:
    if request.strength is None or not 0.0 < request.strength <= 1.0:
        raise InvalidRequest("strength", request.strength,
                             f"a {request.kind} needs a strength above 0, up to 1")
    # img2img runs steps × strength denoising steps; zero would return the parent unchanged.
    needed = math.ceil(1 / request.strength)
    if needed > MAX_STEPS:
        raise InvalidRequest("strength", request.strength, f"at least 1/{MAX_STEPS}, or no "
                             "denoising step would run")
    if int(request.steps * request.strength) < 1:
        raise InvalidRequest("steps", request.steps, f"at least {needed} for a strength of "
                             f"{request.strength}")
