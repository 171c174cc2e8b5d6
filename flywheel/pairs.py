"""Pairs and per-image labels from what members do with a grid (pure functions over rows).

- U k (take image k): k beat each of the other three images of its grid: three pairs.
- V k (vary image k): the same three pairs, but a weaker signal, so they get a source of
  their own (implicit_variation) and are never mixed silently with U picks.
- 🔄 (re-roll): the whole grid lost. No pairs inside it (nothing in it was preferred);
  each of its images gets a weak negative label instead.
- ❤ and 👍 are positive labels for one image, 👎 a negative one (KTO-style data). The
  single-image Vary and Upscale buttons are weak positives: the image was shown alone, so
  they imply no pairs.
Every pair keeps the slots the two images were shown in and how long the member took.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# feedback kind → comparison source, for the kinds that imply pairs
PAIR_SOURCES = {"upscale_pick": "implicit_upscale", "variation_pick": "implicit_variation"}
# feedback kind → (label, strength) for one image; strength "strong" or "weak"
IMAGE_LABELS = {"favourite": (1, "strong"), "thumbs_up": (1, "strong"),
                "thumbs_down": (-1, "strong"), "upscale_pick": (1, "strong"),
                "variation_pick": (1, "weak"), "vary_subtle": (1, "weak"),
                "vary_strong": (1, "weak"), "upscale_2x": (1, "weak"),
                # edits (issue J): an edit of image k is a weak positive for k
                "vary_region": (1, "weak"), "zoom_out": (1, "weak"), "pan": (1, "weak")}
REROLL_LABEL = (-1, "weak")


@dataclass(frozen=True)
class GridImage:
    """One image of a grid and the slot (1-4) it was shown in."""

    image_id: int
    slot: int


@dataclass(frozen=True)
class Decision:
    """One feedback event, as the flywheel reads it."""

    kind: str
    member_id: int
    shown_at: datetime
    decided_at: datetime
    image_id: int | None = None  # the image acted on (None for a re-roll)
    slot: int | None = None  # where it was shown


@dataclass(frozen=True)
class ImplicitPair:
    """image_a beat image_b (label "a"), as implied by a pick."""

    image_a_id: int
    image_b_id: int
    source: str
    member_id: int
    shown_slot_a: int
    shown_slot_b: int
    decision_ms: int


@dataclass(frozen=True)
class ImageLabel:
    image_id: int
    label: int  # +1 liked, -1 disliked
    strength: str  # strong (an explicit thumb, heart or pick) or weak (a variation, a re-roll)
    kind: str  # the feedback kind it came from
    member_id: int


def decision_ms(decision: Decision) -> int:
    """Time from seeing the image(s) to the click, in whole milliseconds (never negative)."""
    return max(0, round((decision.decided_at - decision.shown_at).total_seconds() * 1000))


def pairs_from(decision: Decision, grid: Sequence[GridImage]) -> list[ImplicitPair]:
    """The pairs a pick implies: the picked image beat each other image of its grid."""
    source = PAIR_SOURCES.get(decision.kind)
    if source is None:
        return []
    picked = [image for image in grid if image.image_id == decision.image_id]
    if len(picked) != 1:
        raise ValueError(f"image_id is {decision.image_id!r}: it is not one image of the grid "
                         f"{[image.image_id for image in grid]}")
    winner = picked[0]
    return [ImplicitPair(winner.image_id, other.image_id, source, decision.member_id,
                         winner.slot, other.slot, decision_ms(decision))
            for other in grid if other.image_id != winner.image_id]


def label_of(kind: str) -> tuple[int, str] | None:
    """(+1 or -1, strong or weak) a feedback kind gives the image(s) it is about; None for
    a kind that labels no image (a vote)."""
    return REROLL_LABEL if kind == "reroll" else IMAGE_LABELS.get(kind)


def labels_from(decision: Decision, grid: Sequence[GridImage]) -> list[ImageLabel]:
    """Per-image labels: a re-roll marks every image of its grid, the others one image."""
    found = label_of(decision.kind)
    if decision.kind == "reroll":
        images = [image.image_id for image in grid]
    else:
        images = [] if found is None or decision.image_id is None else [decision.image_id]
    return [ImageLabel(image, *found, decision.kind, decision.member_id) for image in images]
