"""The job contract: every field's rule, the kind rules, batch keys and the JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from generation.contract import (
    MAX_SEED,
    PARENT_KINDS,
    SAMPLERS,
    VARIATION_STRENGTH,
    GenerationRequest,
    GenerationResult,
    InvalidRequest,
    JobKind,
    PromptPart,
    ResultImage,
)

CONTROL_CHAR = "plain text only (tabs and line breaks are fine)"
SAMPLER_LIST = "euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, unipc, flow_euler"
REQUEST_FIELDS = ("channel_id, expand, guidance, guild_id, height, kind, mask_image, model, "
                  "negative_prompt, num_images, object_ref, object_weight, parent_image, "
                  "prompt, prompt_parts, sampler, seed, steps, stop, strength, style_refs, "
                  "style_weight, tile, user_id, width")
SHA = "ab" * 32


def imagine(**overrides) -> GenerationRequest:
    fields = dict(kind=JobKind.IMAGINE, prompt="a lighthouse at dusk", model="sdxl",
                  width=1024, height=1024, steps=30, guidance=5.0, sampler="euler", seed=42)
    return GenerationRequest(**{**fields, **overrides})


def variation(**overrides) -> GenerationRequest:
    fields = dict(kind=JobKind.VARIATION, parent_image="blobs/parent.png", strength=0.35)
    return imagine(**{**fields, **overrides})


def upscale(**overrides) -> GenerationRequest:
    fields = dict(kind=JobKind.UPSCALE, parent_image="blobs/parent.png", strength=0.3,
                  num_images=1)
    return imagine(**{**fields, **overrides})


def refused(message: str):
    """Expect InvalidRequest with exactly this message."""
    return pytest.raises(InvalidRequest, match=f"^{re.escape(message)}$")


def test_a_plain_imagine_request_is_valid():
    request = imagine()
    assert request.kind is JobKind.IMAGINE
    assert request.num_images == 4
    assert request.strength is None and request.parent_image is None


def test_invalid_request_keeps_field_value_and_allowed():
    with pytest.raises(InvalidRequest) as caught:
        imagine(steps=0)
    assert (caught.value.field, caught.value.value, caught.value.allowed) == (
        "steps", 0, "allowed 1 to 150")
    assert isinstance(caught.value, ValueError)


def test_requests_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        imagine().steps = 10  # type: ignore[misc]


# -- prompt ---------------------------------------------------------------------


@pytest.mark.parametrize("prompt", ["", " ", "\t\n  "])
def test_empty_or_blank_prompt_is_refused(prompt):
    with refused(f"prompt is {prompt!r}: must not be empty"):
        imagine(prompt=prompt)


def test_prompt_of_2000_chars_is_accepted_and_2001_refused():
    assert len(imagine(prompt="x" * 2000).prompt) == 2000
    with pytest.raises(InvalidRequest, match=re.escape(": at most 2000 characters, got 2001")) \
            as caught:
        imagine(prompt="x" * 2001)
    assert caught.value.field == "prompt"
    assert str(caught.value).startswith("prompt is 'xxx")
    assert "..." in str(caught.value)  # the long value is cut short in the message


@pytest.mark.parametrize(("prompt", "code"), [
    ("a\x00b", "U+0000"), ("bell\x07", "U+0007"), ("esc\x1b[31m", "U+001B"),
    ("del\x7f", "U+007F"), ("nel\x85", "U+0085"),
])
def test_control_characters_are_refused(prompt, code):
    with refused(f"prompt is {prompt!r}: contains the control character {code}; {CONTROL_CHAR}"):
        imagine(prompt=prompt)


def test_control_characters_are_refused_in_the_negative_prompt_too():
    with refused(f"negative_prompt is 'a\\x00': contains the control character U+0000; "
                 f"{CONTROL_CHAR}"):
        imagine(negative_prompt="a\x00")


def test_tabs_and_line_breaks_are_allowed():
    assert imagine(prompt="line one\n\tline two").prompt == "line one\n\tline two"
    assert imagine(prompt="windows\r\nline").prompt == "windows\r\nline"


def test_a_lone_surrogate_is_refused():
    with refused(f"prompt is 'cat \\ud800': contains the control character U+D800; "
                 f"{CONTROL_CHAR}"):
        imagine(prompt="cat \ud800")


def test_empty_negative_prompt_is_fine_but_too_long_one_is_not():
    assert imagine(negative_prompt="").negative_prompt == ""
    with pytest.raises(InvalidRequest, match=re.escape("at most 2000 characters, got 2001")):
        imagine(negative_prompt="n" * 2001)


# -- numeric ranges -----------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("steps", 0, False), ("steps", 1, True), ("steps", 150, True), ("steps", 151, False),
    ("guidance", -0.1, False), ("guidance", 0.0, True), ("guidance", 30.0, True),
    ("guidance", 30.1, False), ("guidance", math.nan, False), ("guidance", math.inf, False),
    ("guidance", -math.inf, False),
    ("seed", -1, False), ("seed", 0, True), ("seed", 2**32 - 1, True), ("seed", 2**32, False),
    ("num_images", 0, False), ("num_images", 1, True), ("num_images", 4, True),
    ("num_images", 5, False),
])
def test_numeric_field_bounds(field, value, ok):
    if ok:
        assert getattr(imagine(**{field: value}), field) == value
        return
    low, high = {"steps": (1, 150), "guidance": (0.0, 30.0), "seed": (0, 2**32 - 1),
                 "num_images": (1, 4)}[field]
    with refused(f"{field} is {value!r}: allowed {low} to {high}"):
        imagine(**{field: value})


@pytest.mark.parametrize("side", ["width", "height"])
@pytest.mark.parametrize("value", [500, 1000, 65, 0, -64, 32, 2112, 4096])
def test_sides_must_be_multiples_of_64_from_64_to_2048(side, value):
    with refused(f"{side} is {value}: a multiple of 64 from 64 to 2048"):
        imagine(**{side: value})


@pytest.mark.parametrize(("width", "height"), [(64, 64), (2048, 2048), (2048, 512),
                                               (512, 2048), (256, 64)])
def test_sizes_at_the_limits_are_accepted(width, height):
    request = imagine(width=width, height=height)
    assert (request.width, request.height) == (width, height)


@pytest.mark.parametrize(("width", "height"), [(2048, 448), (448, 2048), (320, 64), (64, 320)])
def test_aspect_beyond_4_to_1_is_refused(width, height):
    with refused(f"size is '{width}x{height}': aspect ratio between 1:4 and 4:1"):
        imagine(width=width, height=height)


@pytest.mark.parametrize("sampler", ["k_lms", "Euler", "", "euler "])
def test_unknown_sampler_is_refused_with_the_allowed_list(sampler):
    with refused(f"sampler is {sampler!r}: allowed: {SAMPLER_LIST}"):
        imagine(sampler=sampler)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_listed_sampler_is_accepted(sampler):
    assert imagine(sampler=sampler).sampler == sampler


def test_empty_model_name_is_refused():
    with refused("model is '': a model name is required"):
        imagine(model="")


# -- types --------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("steps", True, "a whole number"),
    ("seed", False, "a whole number"),
    ("width", True, "a whole number"),
    ("steps", "30", "a whole number"),
    ("width", 512.0, "a whole number"),
    ("num_images", 2.0, "a whole number"),
    ("guidance", True, "a number"),
    ("guidance", "7.5", "a number"),
    ("prompt", 5, "text"),
    ("tile", 1, "true or false"),
    ("tile", "yes", "true or false"),
    ("user_id", True, "a whole number or null"),
    ("user_id", "1234", "a whole number or null"),
    ("parent_image", 5, "text or null"),
    ("kind", "imagine", "one of imagine, variation, upscale, reroll, vary_region, zoom_out, pan, "
     "blend"),
])
def test_wrong_types_are_refused(field, value, expected):
    with refused(f"{field} is {value!r}: must be {expected}"):
        imagine(**{field: value})


def test_whole_number_guidance_is_stored_as_a_float():
    request = imagine(guidance=7)
    assert request.guidance == 7.0
    assert type(request.guidance) is float


def test_whole_number_strength_is_stored_as_a_float():
    request = variation(strength=1)
    assert request.strength == 1.0
    assert type(request.strength) is float


# -- kind rules -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [JobKind.IMAGINE, JobKind.REROLL])
def test_an_image_prompt_is_a_parent_image_with_a_strength(kind):
    request = imagine(kind=kind, parent_image="prompts/1.png", strength=0.5)
    assert GenerationRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize("kind", [JobKind.IMAGINE, JobKind.REROLL])
def test_an_image_prompt_without_a_strength_is_refused(kind):
    with refused(f"strength is None: a {kind.value} needs a strength above 0, up to 1"):
        imagine(kind=kind, parent_image="prompts/1.png")


@pytest.mark.parametrize("kind", [JobKind.IMAGINE, JobKind.REROLL])
def test_a_strength_without_a_parent_image_is_refused(kind):
    with refused(f"strength is 0.5: only a job with a parent image has a strength, "
                 f"not this {kind.value}"):
        imagine(kind=kind, strength=0.5)


@pytest.mark.parametrize(("make", "kind"), [(variation, "variation"), (upscale, "upscale")])
@pytest.mark.parametrize("parent", [None, ""])
def test_img2img_kinds_need_a_parent_image(make, kind, parent):
    with refused(f"parent_image is {parent!r}: a {kind} needs the blob key of its parent image"):
        make(parent_image=parent)


@pytest.mark.parametrize(("make", "kind"), [(variation, "variation"), (upscale, "upscale")])
@pytest.mark.parametrize("strength", [None, 0.0, 0, -0.5, 1.5, 1.0001, math.nan])
def test_img2img_kinds_need_a_strength_above_0_up_to_1(make, kind, strength):
    shown = repr(float(strength)) if isinstance(strength, int) else repr(strength)
    with refused(f"strength is {shown}: a {kind} needs a strength above 0, up to 1"):
        make(strength=strength)


@pytest.mark.parametrize("strength", [1.0, 0.04, *VARIATION_STRENGTH.values()])
def test_strengths_in_range_are_accepted(strength):
    assert variation(strength=strength).strength == strength


@pytest.mark.parametrize(("steps", "strength", "at_least"), [
    (2, 0.35, 3), (1, 0.7, 2), (9, 0.1, 10), (3, 0.3, 4), (149, 1 / 150, 150),
])
def test_too_few_img2img_steps_are_refused_with_the_minimum(steps, strength, at_least):
    with refused(f"steps is {steps}: at least {at_least} for a strength of {strength}"):
        variation(steps=steps, strength=strength)


@pytest.mark.parametrize(("steps", "strength"), [(3, 0.35), (2, 0.7), (10, 0.1), (1, 1.0)])
def test_the_minimum_img2img_steps_are_accepted(steps, strength):
    assert variation(steps=steps, strength=strength).steps == steps


@pytest.mark.parametrize("count", [0, 2, 4])
def test_an_upscale_makes_exactly_one_image(count):
    message = ("num_images is 0: allowed 1 to 4" if count == 0
               else f"num_images is {count}: an upscale makes exactly 1 image")
    with refused(message):
        upscale(num_images=count)


def test_an_upscale_of_one_image_is_valid():
    assert upscale().num_images == 1


@pytest.mark.parametrize("field", ["user_id", "guild_id", "channel_id"])
@pytest.mark.parametrize(("value", "ok"), [(-1, False), (0, True), (2**64 - 1, True),
                                           (2**64, False), (None, True)])
def test_snowflake_ids_fit_64_unsigned_bits(field, value, ok):
    if ok:
        assert getattr(imagine(**{field: value}), field) == value
        return
    with refused(f"{field} is {value}: allowed 0 to {2**64 - 1}"):
        imagine(**{field: value})


# -- seeds and batch keys --------------------------------------------------------------


@pytest.mark.parametrize(("seed", "count", "seeds"), [
    (10, 4, [10, 11, 12, 13]), (0, 1, [0]), (7, 3, [7, 8, 9]),
    (MAX_SEED, 2, [MAX_SEED, MAX_SEED + 1]),
])
def test_image_i_uses_seed_plus_i(seed, count, seeds):
    assert imagine(seed=seed, num_images=count).seeds == seeds


def test_imagine_and_reroll_with_the_same_settings_share_a_batch_key():
    assert imagine().batch_key() == imagine(kind=JobKind.REROLL).batch_key()


def test_prompt_seed_count_and_ids_do_not_split_a_batch():
    other = imagine(prompt="a different thing", negative_prompt="fog", seed=9, num_images=1,
                    user_id=1, guild_id=2, channel_id=3)
    assert other.batch_key() == imagine().batch_key()


@pytest.mark.parametrize("change", [
    {"steps": 31}, {"width": 1344, "height": 768}, {"height": 960}, {"sampler": "ddim"},
    {"tile": True}, {"guidance": 6.0}, {"model": "sd15"},
])
def test_different_settings_give_different_batch_keys(change):
    assert imagine(**change).batch_key() != imagine().batch_key()


def test_variations_of_different_strength_do_not_share_a_batch():
    assert variation(strength=0.35).batch_key() != variation(strength=0.7).batch_key()
    assert variation(strength=0.35).batch_key() == variation(
        strength=0.35, parent_image="blobs/other.png").batch_key()


def test_a_variation_does_not_batch_with_an_imagine():
    assert variation().batch_key() != imagine().batch_key()


# -- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    imagine(),
    imagine(kind=JobKind.REROLL, seed=MAX_SEED, num_images=1, tile=True,
            user_id=2**64 - 1, guild_id=0, channel_id=123456789012345678),
    variation(strength=0.7, negative_prompt="blurry"),
    upscale(width=512, height=2048),
], ids=["imagine", "reroll", "variation", "upscale"])
def test_each_kind_survives_the_json_round_trip(request_):
    text = request_.to_json()
    assert GenerationRequest.from_json(text) == request_
    assert GenerationRequest.from_json(text.encode()) == request_
    assert json.loads(text)["kind"] == request_.kind.value


@pytest.mark.parametrize("prompt", ["猫 in a hat 🎩", "東京の夜景, 雨", "café — naïve ✨",
                                    "😀" * 2000])
def test_non_ascii_prompts_survive_the_round_trip(prompt):
    request = imagine(prompt=prompt, negative_prompt="🙅 ugly")
    text = request.to_json()
    assert prompt in text  # written as is, not as \u escapes
    back = GenerationRequest.from_json(text)
    assert back.prompt == prompt and back == request


def test_from_json_gives_a_whole_number_guidance_back_as_float():
    data = json.loads(imagine().to_json())
    data["guidance"] = 7
    request = GenerationRequest.from_json(json.dumps(data))
    assert request.guidance == 7.0 and type(request.guidance) is float


def test_from_json_fills_in_defaults():
    text = json.dumps(dict(kind="imagine", prompt="p", model="m", width=64, height=64,
                           steps=1, guidance=0, sampler="euler", seed=0))
    request = GenerationRequest.from_json(text)
    assert (request.num_images, request.negative_prompt, request.tile) == (4, "", False)


def test_from_json_refuses_text_that_is_not_json():
    message = "json is 'not json': not valid JSON (Expecting value: line 1 column 1 (char 0))"
    with refused(message):
        GenerationRequest.from_json("not json")


@pytest.mark.parametrize(("text", "shown"), [("[1, 2]", "[1, 2]"), ("null", "None"),
                                             ('"imagine"', "'imagine'"), ("7", "7")])
def test_from_json_refuses_json_that_is_not_an_object(text, shown):
    with refused(f"json is {shown}: must be a JSON object"):
        GenerationRequest.from_json(text)


def test_from_json_refuses_unknown_fields_and_lists_the_known_ones():
    data = json.loads(imagine().to_json()) | {"colour": "red", "aspect": "16:9"}
    with refused(f"json is ['aspect', 'colour']: unknown field(s); known: {REQUEST_FIELDS}"):
        GenerationRequest.from_json(json.dumps(data))


@pytest.mark.parametrize("missing", [["prompt"], ["seed", "width"]])
def test_from_json_refuses_missing_required_fields(missing):
    data = {k: v for k, v in json.loads(imagine().to_json()).items() if k not in missing}
    with refused(f"json is {missing!r}: required field(s) missing"):
        GenerationRequest.from_json(json.dumps(data))


@pytest.mark.parametrize("kind", ["paint", "IMAGINE", None, 1])
def test_from_json_refuses_a_bad_kind_and_lists_the_kinds(kind):
    data = json.loads(imagine().to_json()) | {"kind": kind}
    with refused(f"kind is {kind!r}: allowed: imagine, variation, upscale, reroll, "
                 "vary_region, zoom_out, pan, blend"):
        GenerationRequest.from_json(json.dumps(data))


def test_from_json_still_validates_the_fields():
    data = json.loads(imagine().to_json()) | {"steps": 0}
    with refused("steps is 0: allowed 1 to 150"):
        GenerationRequest.from_json(json.dumps(data))


# A prompt character is anything but control characters and lone surrogates (tab, newline ok).
TEXT_CHARS = st.characters(exclude_categories=("Cc", "Cs")) | st.sampled_from("\t\n")
SIDES = st.integers(1, 32).map(lambda n: n * 64)
SNOWFLAKES = st.none() | st.integers(0, 2**64 - 1)


@st.composite
def valid_requests(draw) -> GenerationRequest:
    kind = draw(st.sampled_from(JobKind))
    width, height = draw(SIDES), draw(SIDES)
    assume(max(width, height) <= 4 * min(width, height))
    steps = draw(st.integers(1, 150))
    img2img = kind in PARENT_KINDS
    strength = draw(st.floats(0.01, 1.0)) if img2img else None
    assume(strength is None or int(steps * strength) >= 1)
    return GenerationRequest(
        kind=kind,
        prompt=draw(st.text(TEXT_CHARS, min_size=1, max_size=2000).filter(str.strip)),
        negative_prompt=draw(st.text(TEXT_CHARS, max_size=300)),
        model=draw(st.text(min_size=1, max_size=30)),
        width=width, height=height, steps=steps,
        guidance=draw(st.floats(0.0, 30.0) | st.integers(0, 30)),
        sampler=draw(st.sampled_from(SAMPLERS)),
        seed=draw(st.integers(0, MAX_SEED)),
        num_images=1 if kind is JobKind.UPSCALE else draw(st.integers(1, 4)),
        tile=draw(st.booleans()),
        strength=strength,
        parent_image=draw(st.text(min_size=1, max_size=60)) if img2img else None,
        user_id=draw(SNOWFLAKES), guild_id=draw(SNOWFLAKES), channel_id=draw(SNOWFLAKES),
        **draw(edit_fields(kind)),
    )


@st.composite
def edit_fields(draw, kind: JobKind) -> dict:
    """What an edit kind carries besides a parent: a mask, the pixels added, references."""
    fields = {"style_refs": tuple(draw(st.lists(st.text(min_size=1, max_size=20),
                                                min_size=2 if kind is JobKind.BLEND else 0,
                                                max_size=5))),
              "style_weight": draw(st.integers(0, 1000)),
              "object_ref": draw(st.none() | st.text(min_size=1, max_size=20)),
              "object_weight": draw(st.integers(0, 1000))}
    if kind is JobKind.VARY_REGION:
        fields["mask_image"] = draw(st.text(min_size=1, max_size=60))
    if kind is JobKind.ZOOM_OUT:
        fields["expand"] = tuple(draw(st.lists(st.integers(1, 4096), min_size=4, max_size=4)))
    if kind is JobKind.PAN:
        fields["expand"] = draw(st.permutations([draw(st.integers(1, 4096)), 0, 0, 0]))
        fields["expand"] = tuple(fields["expand"])
    return fields


@settings(max_examples=200, deadline=None)
@given(valid_requests())
def test_any_valid_request_survives_the_json_round_trip(request_):
    assert GenerationRequest.from_json(request_.to_json()) == request_


# -- results ------------------------------------------------------------------------------


def image(**overrides) -> ResultImage:
    fields = dict(slot=1, seed=42, key="blobs/42.png", width=1024, height=1024, sha256=SHA)
    return ResultImage(**{**fields, **overrides})


def result(**overrides) -> GenerationResult:
    fields = dict(job_id="job-1", images=(image(), image(slot=2, seed=43, key="blobs/43.png")),
                  gpu_ms=1500, encode_ms=40, batch_size=2)
    return GenerationResult(**{**fields, **overrides})


def test_a_result_survives_the_json_round_trip():
    original = result()
    back = GenerationResult.from_json(original.to_json())
    assert back == original
    assert isinstance(back.images, tuple)
    assert all(isinstance(item, ResultImage) for item in back.images)


def test_a_result_of_four_images_survives_the_round_trip():
    images = tuple(image(slot=i + 1, seed=MAX_SEED + i, key=f"k{i}") for i in range(4))
    original = result(images=images, batch_size=1)
    assert GenerationResult.from_json(original.to_json().encode()) == original


@pytest.mark.parametrize("second", [dict(slot=1, key="blobs/43.png"), dict(slot=2)])
def test_each_result_image_has_its_own_slot_and_key(second):
    with pytest.raises(InvalidRequest, match="each image has its own slot and key"):
        result(images=(image(), image(**second)))


def test_gpu_ms_fits_a_postgresql_integer():
    with pytest.raises(InvalidRequest, match="gpu_ms is 2147483648: allowed 0 to 2147483647"):
        result(gpu_ms=2**31)


def test_images_given_as_a_list_become_a_tuple():
    images = [image(), image(slot=2, key="blobs/43.png")]
    made = result(images=images)
    assert made.images == tuple(images)
    assert isinstance(made.images, tuple)


@pytest.mark.parametrize("slot", [0, 5, -1])
def test_result_slot_must_be_1_to_4(slot):
    with refused(f"slot is {slot}: allowed 1 to 4"):
        image(slot=slot)


@pytest.mark.parametrize("slot", [1, 4])
def test_result_slots_1_and_4_are_fine(slot):
    assert image(slot=slot).slot == slot


@pytest.mark.parametrize("sha256", ["", "ab" * 31, "ab" * 32 + "a", "ab" * 33])
def test_result_sha256_must_be_64_characters(sha256):
    with pytest.raises(InvalidRequest, match=re.escape(": 64 lowercase hex digits")) as caught:
        image(sha256=sha256)
    assert caught.value.field == "sha256"


def test_result_sha256_must_be_hex_digits():
    with pytest.raises(InvalidRequest, match=re.escape(": 64 lowercase hex digits")):
        image(sha256="z" * 64)


def test_result_needs_a_blob_key():
    with refused("key is '': a blob key is required"):
        image(key="")


def test_result_image_refuses_a_bool_slot():
    with refused("slot is True: must be a whole number"):
        image(slot=True)


def test_a_result_needs_at_least_one_image():
    with refused("images is 0: allowed 1 to 4"):
        result(images=())


def test_a_result_holds_at_most_four_images():
    with refused("images is 5: allowed 1 to 4"):
        result(images=[image()] * 5)


def test_a_result_needs_a_job_id():
    with refused("job_id is '': a job id is required"):
        result(job_id="")


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("gpu_ms", -1, "allowed 0 to 2147483647"),
    ("encode_ms", -1, "allowed 0 to 2147483647"),
    ("batch_size", 0, "allowed 1 to 1024"),
    ("batch_size", 1025, "allowed 1 to 1024"),
])
def test_result_timings_and_batch_size_ranges(field, value, allowed):
    with refused(f"{field} is {value}: {allowed}"):
        result(**{field: value})


def test_result_from_json_needs_a_list_of_images():
    data = json.loads(result().to_json()) | {"images": "none"}
    with refused("images is 'none': a list of images"):
        GenerationResult.from_json(json.dumps(data))


def test_result_from_json_needs_each_image_to_be_an_object():
    data = json.loads(result().to_json()) | {"images": [5]}
    with refused("images is 5: each image is a JSON object"):
        GenerationResult.from_json(json.dumps(data))


def test_result_from_json_refuses_unknown_image_fields():
    data = json.loads(result().to_json())
    data["images"][0]["format"] = "png"
    with refused("json is ['format']: unknown field(s); known: flagged, height, key, labels, "
                 "seed, sha256, slot, width"):
        GenerationResult.from_json(json.dumps(data))


# -- multi-prompt parts and --stop ---------------------------------------------

HOT_DOG = (PromptPart("hot dog", 2), PromptPart("animal", -0.5))


def test_prompt_parts_and_stop_round_trip_through_json():
    request = imagine(prompt="hot dog::2 animal::-0.5", prompt_parts=HOT_DOG, stop=50)
    data = json.loads(request.to_json())
    assert data["prompt_parts"] == [{"text": "hot dog", "weight": 2.0},
                                    {"text": "animal", "weight": -0.5}]
    assert GenerationRequest.from_json(request.to_json()) == request
    assert request.prompt == "hot dog::2 animal::-0.5"  # the text as typed, for echoes


def test_a_request_without_parts_or_stop_reads_as_before():
    data = json.loads(imagine().to_json())
    del data["prompt_parts"], data["stop"]
    assert GenerationRequest.from_json(json.dumps(data)) == imagine()


def test_weights_must_add_up_to_more_than_zero():
    with refused("prompt_parts is [1.0, -1.0]: the weights add up to 0; they must add up "
                 "to more than 0"):
        imagine(prompt_parts=(PromptPart("a"), PromptPart("b", -1)))


@pytest.mark.parametrize(("part", "message"), [
    (lambda: PromptPart("  "), "prompt_parts.text is '  ': must not be empty"),
    (lambda: PromptPart("a", 1001), "prompt_parts.weight is 1001.0: allowed -1000.0 to 1000.0"),
    (lambda: PromptPart("a", math.nan), "prompt_parts.weight is nan: allowed -1000.0 to 1000.0"),
    (lambda: PromptPart("a", True), "weight is True: must be a number"),
])
def test_a_bad_part_is_refused_naming_it(part, message):
    with refused(message):
        part()


def test_parts_from_the_queue_are_checked_too():
    data = json.loads(imagine().to_json())
    with refused("prompt_parts is 'a::2': a list of {text, weight} objects"):
        GenerationRequest.from_json(json.dumps(data | {"prompt_parts": "a::2"}))
    with refused("json is ['colour']: unknown field(s); known: text, weight"):
        GenerationRequest.from_json(json.dumps(data | {"prompt_parts": [{"colour": 1}]}))
    too_many = [{"text": "a", "weight": 1}] * 21
    with refused("prompt_parts is 21: at most 20 parts"):
        GenerationRequest.from_json(json.dumps(data | {"prompt_parts": too_many}))


@pytest.mark.parametrize("stop", [9, 101, 0])
def test_stop_is_a_percent_from_10_to_100(stop):
    with refused(f"stop is {stop}: allowed 10 to 100"):
        imagine(stop=stop)


def test_stop_is_part_of_the_batch_key():
    assert imagine(stop=50).batch_key() != imagine().batch_key()
    assert imagine(prompt_parts=HOT_DOG).batch_key() == imagine().batch_key()  # mixed batches work
