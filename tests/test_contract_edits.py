"""The edit kinds' fields (issue J): what each kind must and must not carry."""

from __future__ import annotations

import dataclasses

import pytest

from generation.contract import (
    MAX_EXPAND,
    GenerationRequest,
    InvalidRequest,
    JobKind,
)

BASE = dict(prompt="a red fox", model="tiny-random", width=64, height=64, steps=4,
            guidance=7.5, sampler="euler", seed=1)


def edit(kind: JobKind, **fields) -> GenerationRequest:
    parent = {"parent_image": "images/1/1.png", "strength": 1.0}
    defaults = {JobKind.VARY_REGION: parent | {"mask_image": "masks/1.png"},
                JobKind.ZOOM_OUT: parent | {"expand": (16, 16, 16, 16)},
                JobKind.PAN: parent | {"expand": (0, 0, 64, 0)},
                JobKind.BLEND: {"style_refs": ("refs/1.png", "refs/2.png"), "prompt": ""}}
    return GenerationRequest(kind=kind, **BASE | defaults.get(kind, {}) | fields)


@pytest.mark.parametrize("kind", [JobKind.VARY_REGION, JobKind.ZOOM_OUT, JobKind.PAN,
                                  JobKind.BLEND])
def test_each_edit_kind_round_trips_through_json(kind):
    request = edit(kind)
    assert GenerationRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize("kind", [JobKind.VARY_REGION, JobKind.ZOOM_OUT, JobKind.PAN])
def test_edits_of_an_image_need_their_parent(kind):
    with pytest.raises(InvalidRequest, match="parent_image"):
        edit(kind, parent_image=None, strength=None)


def test_vary_region_needs_a_mask_and_nothing_else_has_one():
    with pytest.raises(InvalidRequest, match="mask_image"):
        edit(JobKind.VARY_REGION, mask_image=None)
    with pytest.raises(InvalidRequest, match="mask_image"):
        edit(JobKind.ZOOM_OUT, mask_image="masks/1.png")


@pytest.mark.parametrize("expand, kind, message", [
    ((0, 0, 0, 0), JobKind.ZOOM_OUT, "at least one side"),
    ((1, 0, 1, 0), JobKind.PAN, "exactly one side"),
    ((-1, 0, 0, 0), JobKind.ZOOM_OUT, "from 0 to"),
    ((MAX_EXPAND + 1, 0, 0, 0), JobKind.PAN, "from 0 to"),
    ((1, 2, 3), JobKind.ZOOM_OUT, "four whole numbers"),
    ((1.5, 0, 0, 0), JobKind.PAN, "four whole numbers"),
    ((True, 0, 0, 0), JobKind.PAN, "four whole numbers"),
])
def test_expand_is_checked(expand, kind, message):
    with pytest.raises(InvalidRequest, match=message):
        edit(kind, expand=expand)


def test_only_zoom_and_pan_expand():
    with pytest.raises(InvalidRequest, match="expand"):
        edit(JobKind.VARY_REGION, expand=(1, 0, 0, 0))
    with pytest.raises(InvalidRequest, match="expand"):
        edit(JobKind.ZOOM_OUT, expand=None)


def test_a_blend_takes_2_to_5_images_and_may_have_no_prompt():
    assert edit(JobKind.BLEND).prompt == ""
    for refs in [("a",), tuple("abcdef")]:
        with pytest.raises(InvalidRequest, match="style_refs"):
            edit(JobKind.BLEND, style_refs=refs)
    with pytest.raises(InvalidRequest, match="parent_image"):
        edit(JobKind.BLEND, parent_image="images/1/1.png", strength=0.5)


def test_other_kinds_still_need_a_prompt():
    with pytest.raises(InvalidRequest, match="prompt"):
        GenerationRequest(kind=JobKind.IMAGINE, **BASE | {"prompt": ""})


@pytest.mark.parametrize("field, value", [("style_weight", -1), ("style_weight", 1001),
                                          ("object_weight", 1001), ("object_ref", ""),
                                          ("style_refs", ("",))])
def test_reference_fields_are_checked(field, value):
    with pytest.raises(InvalidRequest, match=field):
        GenerationRequest(kind=JobKind.IMAGINE, **BASE | {field: value})


def test_references_and_their_weights_split_batches():
    plain = GenerationRequest(kind=JobKind.IMAGINE, **BASE)
    styled = dataclasses.replace(plain, style_refs=("refs/1.png",))
    heavier = dataclasses.replace(styled, style_weight=300)
    other_image = dataclasses.replace(styled, style_refs=("refs/2.png",))
    assert plain.batch_key() != styled.batch_key() != heavier.batch_key()
    assert styled.batch_key() == other_image.batch_key()  # one call takes many images
    # A weight without references changes nothing, so it does not split a batch.
    assert dataclasses.replace(plain, object_weight=5).batch_key() == plain.batch_key()
