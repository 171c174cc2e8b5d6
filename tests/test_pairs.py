"""Pairs and labels derived from each kind of click, with slots and decision times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flywheel.pairs import Decision, GridImage, ImageLabel, ImplicitPair, labels_from, pairs_from

GRID = [GridImage(image_id=100 + slot, slot=slot) for slot in range(1, 5)]
SHOWN = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def click(kind: str, slot: int | None = None, after_s: float = 2.5) -> Decision:
    return Decision(kind=kind, member_id=7, shown_at=SHOWN,
                    decided_at=SHOWN + timedelta(seconds=after_s),
                    image_id=None if slot is None else 100 + slot, slot=slot)


def test_taking_image_2_means_it_beat_the_other_three():
    assert pairs_from(click("upscale_pick", 2), GRID) == [
        ImplicitPair(102, other, "implicit_upscale", 7, 2, other - 100, 2500)
        for other in (101, 103, 104)]


def test_a_variation_pick_is_its_own_weaker_source():
    pairs = pairs_from(click("variation_pick", 3, after_s=0.0004), GRID)
    assert {p.source for p in pairs} == {"implicit_variation"}
    assert [(p.image_a_id, p.shown_slot_a, p.shown_slot_b, p.decision_ms) for p in pairs] == [
        (103, 3, 1, 0), (103, 3, 2, 0), (103, 3, 4, 0)]


@pytest.mark.parametrize("kind", ["reroll", "thumbs_up", "thumbs_down", "favourite",
                                  "vary_subtle", "vary_strong", "upscale_2x", "vote"])
def test_other_clicks_imply_no_pairs(kind):
    assert pairs_from(click(kind, None if kind in ("reroll", "vote") else 1), GRID) == []


def test_a_pick_of_an_image_outside_the_grid_is_refused():
    with pytest.raises(ValueError, match=r"image_id is 999: it is not one image of the grid"):
        pairs_from(Decision("upscale_pick", 7, SHOWN, SHOWN, image_id=999, slot=1), GRID)


def test_a_reroll_marks_the_whole_grid_as_a_weak_negative():
    assert labels_from(click("reroll"), GRID) == [
        ImageLabel(image, -1, "weak", "reroll", 7) for image in (101, 102, 103, 104)]


@pytest.mark.parametrize(("kind", "label", "strength"), [
    ("favourite", 1, "strong"), ("thumbs_up", 1, "strong"), ("thumbs_down", -1, "strong"),
    ("upscale_pick", 1, "strong"), ("variation_pick", 1, "weak"), ("vary_subtle", 1, "weak"),
    ("upscale_2x", 1, "weak")])
def test_one_image_labels(kind, label, strength):
    assert labels_from(click(kind, 4), GRID) == [ImageLabel(104, label, strength, kind, 7)]
