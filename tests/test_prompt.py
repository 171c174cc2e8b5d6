"""The prompt language: parse_prompt's flags and messages, build_request's mapping."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.prompt import (
    ParsedPrompt,
    PromptError,
    build_request,
    chaos_guidance,
    parse_prompt,
    quality_steps,
    stylize_guidance,
)
from generation.contract import MAX_SEED, GenerationRequest, JobKind
from generation.registry import Registry, load_registry, tiny_random_spec

# The allowed form of each flag, as every message about it quotes it.
FORM = {
    "ar": "--ar W:H, two whole numbers with a ratio from 1:4 to 4:1, like --ar 16:9",
    "seed": "--seed N, a whole number from 0 to 4294967295",
    "no": "--no A, B, a comma-separated list of things to leave out",
    "chaos": "--chaos N, a whole number from 0 to 100",
    "quality": "--quality Q, one of .25, .5, 1 or 2",
    "stylize": "--stylize N, a whole number from 0 to 1000",
    "repeat": "--repeat N, a whole number from 1 to 4",
    "style": "--style raw",
    "steps": "--steps N, a whole number from 1 to 150",
    "cfg": "--cfg X, a number from 0 to 30",
    "model": "--model NAME, one model name",
    "iw": "--iw N, a number from 0 to 3 (how much the image prompt counts; 1 by default)",
}
AT_THE_END = "flags go at the end, after the prompt."


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    return load_registry(None, tmp_path_factory.mktemp("data"))


def bad_value(typed: str, value: str, problem: str, canonical: str) -> str:
    """The pattern of the message for a value that is malformed or out of range."""
    return re.escape(f"{typed} value {value!r} {problem}: use {FORM[canonical]}.")


# -- parse_prompt: values at and beyond each bound ---------------------------

@pytest.mark.parametrize(("flags", "field", "expected"), [
    ("--ar 1:4", "aspect", (1, 4)),
    ("--ar 4:1", "aspect", (4, 1)),
    ("--ar 16:9", "aspect", (16, 9)),
    ("--seed 0", "seed", 0),
    ("--seed 4294967295", "seed", 4294967295),
    ("--chaos 0", "chaos", 0),
    ("--chaos 100", "chaos", 100),
    ("--quality .25", "quality", 0.25),
    ("--quality 0.25", "quality", 0.25),
    ("--quality .5", "quality", 0.5),
    ("--quality 0.5", "quality", 0.5),
    ("--quality 1", "quality", 1.0),
    ("--quality 1.0", "quality", 1.0),
    ("--quality 2", "quality", 2.0),
    ("--quality 2.0", "quality", 2.0),
    ("--stylize 0", "stylize", 0),
    ("--stylize 1000", "stylize", 1000),
    ("--repeat 1", "repeat", 1),
    ("--repeat 4", "repeat", 4),
    ("--steps 1", "steps", 1),
    ("--steps 150", "steps", 150),
    ("--cfg 0", "cfg", 0.0),
    ("--cfg 30", "cfg", 30.0),
    ("--cfg 7.5", "cfg", 7.5),
    ("--cfg .5", "cfg", 0.5),
    ("--tile", "tile", True),
    ("--style raw", "raw", True),
    ("--style RAW", "raw", True),
    ("--model sd15", "model", "sd15"),
    ("--no text", "negative", ("text",)),
    ("--no text, watermark ,, blurry  hands", "negative", ("text", "watermark", "blurry hands")),
])
def test_valid_flag_values(flags, field, expected):
    parsed = parse_prompt(f"a red fox in snow {flags}")
    assert parsed.text == "a red fox in snow"
    assert getattr(parsed, field) == expected


@pytest.mark.parametrize(("typed", "value", "canonical"), [
    ("--ar", "1:5", "ar"),
    ("--ar", "5:1", "ar"),
    ("--ar", "0:1", "ar"),
    ("--ar", "-1:2", "ar"),
    ("--seed", "-1", "seed"),
    ("--seed", "4294967296", "seed"),
    ("--seed", "9" * 40, "seed"),
    ("--chaos", "-1", "chaos"),
    ("--chaos", "101", "chaos"),
    ("--stylize", "-1", "stylize"),
    ("--stylize", "1001", "stylize"),
    ("--repeat", "0", "repeat"),
    ("--repeat", "5", "repeat"),
    ("--steps", "0", "steps"),
    ("--steps", "151", "steps"),
    ("--cfg", "-0.1", "cfg"),
    ("--cfg", "30.1", "cfg"),
    ("--iw", "3.5", "iw"),
    ("--iw", "-1", "iw"),
])
def test_out_of_range_values(typed, value, canonical):
    shown = value if len(value) <= 40 else value[:39] + "…"
    with pytest.raises(PromptError, match=bad_value(typed, shown, "is out of range", canonical)):
        parse_prompt(f"a fox {typed} {value}")


@pytest.mark.parametrize("value", [".1", "3", "0", "4", "1.5"])
def test_quality_outside_the_allowed_values(value):
    pattern = bad_value("--quality", value, "is not one of the allowed values", "quality")
    with pytest.raises(PromptError, match=pattern):
        parse_prompt(f"a fox --quality {value}")


@pytest.mark.parametrize(("typed", "value", "canonical"), [
    ("--seed", "1e3", "seed"),
    ("--seed", "0x10", "seed"),
    ("--seed", "٣", "seed"),  # an Arabic-Indic digit: str.isdigit says yes, we say no
    ("--seed", "4.0", "seed"),
    ("--seed", "+4", "seed"),
    ("--seed", "forty", "seed"),
    ("--chaos", "1_0", "chaos"),
    ("--stylize", "high", "stylize"),
    ("--repeat", "two", "repeat"),
    ("--steps", "20.5", "steps"),
    ("--cfg", "nan", "cfg"),
    ("--cfg", "inf", "cfg"),
    ("--cfg", "1e1", "cfg"),
    ("--cfg", "7,5", "cfg"),
    ("--quality", "half", "quality"),
    ("--quality", "nan", "quality"),
    ("--ar", "16x9", "ar"),
    ("--ar", "16:9:1", "ar"),
    ("--ar", "16:", "ar"),
    ("--ar", "1.5:1", "ar"),
    ("--style", "cute", "style"),
    ("--no", ",", "no"),
    ("--no", ", ,", "no"),
    ("--iw", "strong", "iw"),
])
def test_malformed_values(typed, value, canonical):
    with pytest.raises(PromptError, match=bad_value(typed, value, "is not valid", canonical)):
        parse_prompt(f"a fox {typed} {value}")


@pytest.mark.parametrize("canonical", sorted(FORM))
def test_missing_value_names_the_form(canonical):
    pattern = re.escape(f"--{canonical} needs a value: use {FORM[canonical]}.")
    with pytest.raises(PromptError, match=pattern):
        parse_prompt(f"a fox --{canonical}")


def test_missing_value_before_the_next_flag():
    with pytest.raises(PromptError, match=re.escape("--seed needs a value")):
        parse_prompt("a fox --seed --tile")


# -- parse_prompt: syntax ---------------------------------------------------

def test_plain_text_has_no_flags():
    assert parse_prompt("  a red fox in snow  ") == ParsedPrompt(text="a red fox in snow")


def test_each_flag_value_runs_to_the_next_flag():
    parsed = parse_prompt("a fox --no text, bad hands --ar 2:1 --tile --seed 7")
    assert parsed == ParsedPrompt(text="a fox", negative=("text", "bad hands"),
                                  aspect=(2, 1), tile=True, seed=7)


@pytest.mark.parametrize(("alias", "field", "value", "expected"), [
    ("--aspect", "aspect", "3:2", (3, 2)),
    ("--c", "chaos", "20", 20),
    ("--q", "quality", ".5", 0.5),
    ("--s", "stylize", "250", 250),
    ("--r", "repeat", "3", 3),
])
def test_aliases(alias, field, value, expected):
    assert getattr(parse_prompt(f"a fox {alias} {value}"), field) == expected


def test_flag_names_ignore_case():
    parsed = parse_prompt("a fox --AR 16:9 --Seed 5 --TILE --Q 2")
    assert (parsed.aspect, parsed.seed, parsed.tile, parsed.quality) == ((16, 9), 5, True, 2.0)


@pytest.mark.parametrize("dash", ["—", "–"])
def test_long_dashes_start_flags(dash):
    parsed = parse_prompt(f"a fox {dash}ar 16:9 {dash}no text")
    assert (parsed.text, parsed.aspect, parsed.negative) == ("a fox", (16, 9), ("text",))


@pytest.mark.parametrize("text", ["a fox — in snow", "a fox – in snow", "a fox -- in snow"])
def test_a_dash_followed_by_a_space_is_text(text):
    assert parse_prompt(text) == ParsedPrompt(text=text)


@pytest.mark.parametrize("text", ["fox--ar 16:9", "fox—seed 3", "a fox ---ar 2:1", "a fox --1"])
def test_a_dash_not_after_whitespace_or_not_before_a_letter_is_text(text):
    assert parse_prompt(text) == ParsedPrompt(text=text)


def test_a_value_may_be_attached_by_a_dash_without_whitespace():
    # `16:9--seed` has no whitespace before the dashes, so it is all one --ar value.
    with pytest.raises(PromptError, match=bad_value("--ar", "16:9--seed", "is not valid", "ar")):
        parse_prompt("a fox --ar 16:9--seed 4")


def test_a_flag_after_a_line_break_counts():
    assert parse_prompt("a fox\n--seed 4").seed == 4


@pytest.mark.parametrize(("text", "pattern"), [
    ("a fox --seed 1 --seed 2", "--seed is given twice: give each flag once."),
    ("a fox --s 50 --stylize 100", "--stylize is given twice (also as --s): give each flag once."),
    ("a fox --AR 1:1 —aspect 2:1", "—aspect is given twice (also as --AR): give each flag once."),
    ("a fox --tile --tile", "--tile is given twice: give each flag once."),
])
def test_duplicate_flags(text, pattern):
    with pytest.raises(PromptError, match=re.escape(pattern)):
        parse_prompt(text)


def test_unknown_flag_suggests_a_close_one():
    with pytest.raises(PromptError, match=re.escape("Unknown flag --sed (did you mean --seed?)")):
        parse_prompt("a fox --sed 4")


def test_unknown_flag_keeps_the_dash_the_member_typed():
    with pytest.raises(PromptError, match=re.escape("Unknown flag —stylise (did you mean")):
        parse_prompt("a fox —stylise 4")


def test_unknown_flag_lists_the_known_flags():
    with pytest.raises(PromptError) as info:
        parse_prompt("a fox --xyzzy 4")
    message = str(info.value)
    assert message.startswith("Unknown flag --xyzzy: the flags are --ar, --seed, --no,")
    assert "did you mean" not in message
    assert all(f"--{name}" in message for name in FORM)


@pytest.mark.parametrize(("text", "typed", "takes", "extra"), [
    ("a fox --seed 42 big fox", "--seed", "takes one value", "big fox"),
    ("a fox --ar 16:9 wide", "--ar", "takes one value", "wide"),
    ("a fox --model sd15 please", "--model", "takes one value", "please"),
    ("a fox --style raw photo", "--style", "takes one value", "photo"),
    ("a fox --tile seamless pattern", "--tile", "takes no value", "seamless pattern"),
])
def test_extra_tokens_after_a_flag(text, typed, takes, extra):
    pattern = re.escape(f"{typed} {takes}, but {extra!r} follows it: {AT_THE_END}")
    with pytest.raises(PromptError, match=pattern):
        parse_prompt(text)


@pytest.mark.parametrize("text", ["", "   ", "\n", "--ar 16:9", "  —seed 3 --tile"])
def test_empty_prompt(text):
    with pytest.raises(PromptError, match="Write what to draw before any flags"):
        parse_prompt(text)


def test_long_values_are_clipped_in_messages():
    with pytest.raises(PromptError) as info:
        parse_prompt("a fox --seed " + "x" * 500)
    assert len(str(info.value)) < 200


# -- build_request ----------------------------------------------------------

def request_for(text: str, registry: Registry, **options) -> GenerationRequest:
    return build_request(parse_prompt(text), registry, rng=random.Random(0), **options)


def test_defaults_come_from_the_default_model(registry):
    request = request_for("a red fox", registry)
    assert request.model == "sdxl"
    assert (request.width, request.height, request.steps) == (1024, 1024, 30)
    assert (request.guidance, request.sampler) == (5.0, "euler")
    assert request.negative_prompt == "blurry, low quality, watermark"
    assert (request.kind, request.num_images, request.tile) == (JobKind.IMAGINE, 4, False)
    assert request.prompt == "a red fox"


def test_ids_kind_and_tile_pass_through(registry):
    request = request_for("a fox --tile", registry, kind=JobKind.REROLL,
                          user_id=1, guild_id=2, channel_id=3)
    assert (request.kind, request.tile) == (JobKind.REROLL, True)
    assert (request.user_id, request.guild_id, request.channel_id) == (1, 2, 3)


@pytest.mark.parametrize(("text", "steps"), [
    ("a fox --model tiny-random --q .5", 2),
    ("a fox --model tiny-random --q .25", 1),
    ("a fox --model tiny-random --q 2", 8),
    ("a fox --q 2", 60),
    ("a fox --q 1", 30),
    ("a fox --q .25", 8),  # 7.5 rounds to even
    ("a fox --steps 12", 12),
])
def test_quality_scales_the_model_steps(registry, text, steps):
    assert request_for(text, registry).steps == steps


def test_quality_steps_past_the_contract_are_refused_not_capped():
    assert quality_steps(2, 75) == 150
    assert quality_steps(0.25, 1) == 1
    with pytest.raises(PromptError, match=re.escape(
            "--quality 2 would take 200 steps on this model; a job may take at most 150")):
        quality_steps(2, 100)


@pytest.mark.parametrize(("stylize", "guidance"), [(0, 7.5), (100, 5.0), (550, 3.5), (1000, 2.0)])
def test_stylize_sets_guidance_relative_to_the_model(registry, stylize, guidance):
    assert request_for(f"a fox --s {stylize}", registry).guidance == pytest.approx(guidance)


def test_stylize_mapping_points():
    assert stylize_guidance(0, 10.0) == pytest.approx(15.0)
    assert stylize_guidance(50, 10.0) == pytest.approx(12.5)
    assert stylize_guidance(100, 10.0) == 10.0
    assert stylize_guidance(1000, 10.0) == pytest.approx(4.0)


@pytest.mark.parametrize(("text", "guidance"), [
    ("a fox --chaos 0", 5.0),
    ("a fox --chaos 100", 2.5),
    ("a fox --chaos 50 --s 0", 5.625),
    ("a fox --chaos 100 --cfg 10", 5.0),
])
def test_chaos_lowers_guidance(registry, text, guidance):
    assert request_for(text, registry).guidance == pytest.approx(guidance)


def test_chaos_mapping_points():
    assert chaos_guidance(0, 8.0) == 8.0
    assert chaos_guidance(100, 8.0) == pytest.approx(4.0)


def test_guidance_is_rounded_to_three_decimals(registry):
    request = request_for("a fox --model sd15 --c 33", registry)
    assert request.guidance == round(7.5 * (1 - 0.5 * 33 / 100), 3)
    assert request.guidance == round(request.guidance, 3)


def test_cfg_is_used_as_given(registry):
    assert request_for("a fox --cfg 12.25", registry).guidance == 12.25


def test_guidance_past_the_contract_is_refused_not_capped(tmp_path):
    strict = replace(tiny_random_spec(tmp_path), guidance=25.0)
    registry = Registry(models={"tiny-random": strict}, default="tiny-random")
    with pytest.raises(PromptError, match=re.escape("guidance is 37.5: allowed 0.0 to 30.0")):
        request_for("a fox --s 0", registry)


@pytest.mark.parametrize(("text", "pattern"), [
    ("a fox --steps 10 --q 2", "--steps and --quality both set the number of steps: use one"),
    ("a fox --cfg 4 --stylize 200", "--cfg and --stylize both set how closely"),
    ("a fox --cfg 4 --s 100", "--cfg and --stylize"),
])
def test_conflicting_flags(registry, text, pattern):
    with pytest.raises(PromptError, match=re.escape(pattern)):
        request_for(text, registry)


def test_model_option_and_flag_must_agree(registry):
    pattern = re.escape("The model option says 'sdxl' but --model says 'sd15': use one of them.")
    with pytest.raises(PromptError, match=pattern):
        request_for("a fox --model sd15", registry, model="sdxl")
    assert request_for("a fox --model sd15", registry, model="sd15").model == "sd15"
    assert request_for("a fox", registry, model="sd15").model == "sd15"


@pytest.mark.parametrize(("text", "option"), [("a fox --model sd99", None), ("a fox", "sd99")])
def test_unknown_model(registry, text, option):
    with pytest.raises(PromptError, match="model is 'sd99': known models are flux-schnell"):
        request_for(text, registry, model=option)


@pytest.mark.parametrize(("text", "size"), [
    ("a fox --ar 16:9", (1344, 768)),
    ("a fox --ar 9:16", (768, 1344)),
    ("a fox --ar 1:1", (1024, 1024)),
    ("a fox --model sd15", (512, 512)),
    ("a fox --model tiny-random --ar 1:4", (64, 128)),  # the tallest 64² bucket
])
def test_aspect_snaps_to_a_bucket(registry, text, size):
    request = request_for(text, registry)
    assert (request.width, request.height) == size


@pytest.mark.parametrize(("text", "negative"), [
    ("a fox --style raw", ""),
    ("a fox --style raw --no text, watermark", "text, watermark"),
    ("a fox --no text, watermark", "blurry, low quality, watermark, text, watermark"),
    ("a fox --model flux-schnell --no text", "text"),
    ("a fox --model flux-schnell", ""),
])
def test_negative_prompt(registry, text, negative):
    assert request_for(text, registry).negative_prompt == negative


def test_explicit_seed(registry):
    assert request_for("a fox --seed 4294967295", registry).seed == MAX_SEED


def test_random_seed_comes_from_the_rng(registry):
    parsed = parse_prompt("a fox")
    first = build_request(parsed, registry, rng=random.Random(7)).seed
    assert first == build_request(parsed, registry, rng=random.Random(7)).seed
    assert 0 <= build_request(parsed, registry).seed <= MAX_SEED


def test_repeat_is_left_to_the_caller(registry):
    parsed = parse_prompt("a fox --repeat 3")
    assert parsed.repeat == 3
    assert not hasattr(build_request(parsed, registry), "repeat")


@pytest.mark.parametrize(("text", "pattern"), [
    ("a fox\x00 in snow", r"prompt is .*control character U\+0000"),
    ("a fox --no text\x07", r"negative_prompt is .*control character U\+0007"),
    ("x" * 2001, "at most 2000 characters"),
])
def test_contract_errors_become_prompt_errors(registry, text, pattern):
    with pytest.raises(PromptError, match=pattern):
        request_for(text, registry)


# -- properties -------------------------------------------------------------

FLAG_LIKE = st.sampled_from([
    "--ar", "—seed", "–no", "--AR", "--aspect", "--c", "--chaos", "--q", "--quality", "--s",
    "--stylize", "--r", "--repeat", "--tile", "--style", "raw", "--steps", "--cfg", "--model",
    "—model", "sdxl", "tiny-random", "--seed", "--xyz", "--", "—", "–", ":", ",", "16:9",
    "1:4", "0:0", "-1", ".5", "2", "1e3", "nan", "٣", "\x00", "\u2028",
])
TOKENS = st.one_of(
    FLAG_LIKE,
    st.integers(-10, 5000).map(str),
    st.floats().map(str),
    st.from_regex(r"-?[0-9]{1,12}:-?[0-9]{1,12}", fullmatch=True),
    st.text(max_size=6),
)
SEPARATORS = st.sampled_from([" ", "", "\n", "\t", "  "])
FLAGGY_TEXT = st.lists(st.tuples(TOKENS, SEPARATORS), max_size=12).map(
    lambda pairs: "".join(token + sep for token, sep in pairs))


def request_or_prompt_error(text: str, registry: Registry, model: str | None) -> None:
    try:
        parsed = parse_prompt(text)
        request = build_request(parsed, registry, model=model, rng=random.Random(1))
    except PromptError:
        return
    assert isinstance(request, GenerationRequest)
    assert request.prompt == parsed.text


@settings(max_examples=300, deadline=None)
@given(text=st.text())
def test_any_text_gives_a_request_or_a_prompt_error(registry, text):
    request_or_prompt_error(text, registry, None)


@settings(max_examples=300, deadline=None)
@given(text=FLAGGY_TEXT, model=st.sampled_from([None, "sd15", "tiny-random", "nope"]))
def test_flag_like_text_gives_a_request_or_a_prompt_error(registry, text, model):
    request_or_prompt_error("a fox " + text, registry, model)
    request_or_prompt_error(text, registry, model)


@settings(max_examples=200, deadline=None)
@given(seed=st.none() | st.integers(0, MAX_SEED), chaos=st.none() | st.integers(0, 100),
       stylize=st.none() | st.integers(0, 1000), repeat=st.integers(1, 4), tile=st.booleans(),
       dash=st.sampled_from(["--", "—", "–"]))
def test_written_flags_read_back(seed, chaos, stylize, repeat, tile, dash):
    flags = {"seed": seed, "chaos": chaos, "stylize": stylize, "repeat": repeat}
    text = "a fox" + "".join(f" {dash}{name} {value}" for name, value in flags.items()
                             if value is not None)
    text += f" {dash}tile" if tile else ""
    assert parse_prompt(text) == ParsedPrompt(text="a fox", tile=tile, **flags)


# -- image prompts ----------------------------------------------------------


LINK = "https://cdn.discordapp.com/attachments/1/2/fox.png"


def test_a_link_at_the_start_is_an_image_prompt():
    parsed = parse_prompt(f"{LINK}  a red fox --iw 2")
    assert (parsed.image_url, parsed.text, parsed.image_weight) == (LINK, "a red fox", 2.0)


def test_a_link_later_in_the_prompt_is_text():
    parsed = parse_prompt(f"a fox like {LINK}")
    assert parsed.image_url is None and parsed.text == f"a fox like {LINK}"


def test_two_image_links_are_refused():
    with pytest.raises(PromptError, match=re.escape("Give one image link, at the start of the "
                                                    "prompt: 'https://b.png' is a second")):
        parse_prompt(f"{LINK} https://b.png a fox")


def test_a_link_alone_is_not_a_prompt():
    with pytest.raises(PromptError, match="Write what to draw"):
        parse_prompt(f"{LINK} --iw 1")


@pytest.mark.parametrize(("text", "strength"), [("a fox", 0.5), ("a fox --iw 3", 0.25),
                                                 ("a fox --iw 0", 1.0), ("a fox --iw .5", 0.6667)])
def test_image_weight_sets_how_much_of_the_image_is_kept(registry, text, strength):
    request = build_request(parse_prompt(text), registry, image_prompt="prompts/1.png")
    assert (request.parent_image, request.strength) == ("prompts/1.png", strength)


def test_image_weight_without_an_image_is_refused(registry):
    with pytest.raises(PromptError, match="--iw sets how much an image prompt counts: attach"):
        build_request(parse_prompt("a fox --iw 2"), registry)


def test_a_default_model_applies_only_when_none_is_named(registry):
    parsed = parse_prompt("a fox")
    assert build_request(parsed, registry, default_model="tiny-random").model == "tiny-random"
    named = parse_prompt("a fox --model sd15")
    assert build_request(named, registry, default_model="tiny-random").model == "sd15"


# -- multi-prompts: `hot dog::2 animal::-0.5` ---------------------------------

@pytest.mark.parametrize(("text", "parts"), [
    ("hot dog::2 animal::-0.5", [("hot dog", 2.0), ("animal", -0.5)]),
    ("space:: ship", [("space", 1.0), ("ship", 1.0)]),
    ("space::ship", [("space", 1.0), ("ship", 1.0)]),
    ("a::1", [("a", 1.0)]),
    ("a fox::", [("a fox", 1.0)]),  # a trailing :: adds nothing
    ("a::1.5 b::.5 c", [("a", 1.5), ("b", 0.5), ("c", 1.0)]),
    ("a::2b", [("a", 1.0), ("2b", 1.0)]),  # a weight ends at a space
])
def test_multi_prompt_parts_and_their_weights(text, parts):
    parsed = parse_prompt(text + " --ar 16:9")
    assert [(part.text, part.weight) for part in parsed.parts] == parts
    assert parsed.text == text  # the text as typed stays the prompt, for echoes and exports


def test_a_prompt_without_double_colons_has_no_parts():
    assert parse_prompt("a fox: in snow").parts == ()


@pytest.mark.parametrize(("text", "message"), [
    ("a::1 b::-1", "The weights after `::` add up to 0 (1 + -1): negative weights are "
                   "allowed, but as in Midjourney the sum must be above 0"),
    ("fox::-2", "The weights after `::` add up to -2 (-2)"),
    ("::2 fox", "The weight '::2' follows no text: write the part before its weight"),
    ("a::1001", "The weight '::1001' is out of range: a weight after :: is a number from "
                "-1000 to 1000."),
    ("::", "Write what to draw around the `::`"),
    ("::".join("abcdefghijklmnopqrstu"), "The prompt has 21 parts separated by `::`: at most "
                                          "20 are allowed."),
])
def test_multi_prompts_that_cannot_be_drawn_say_why(text, message):
    with pytest.raises(PromptError, match="^" + re.escape(message)):
        parse_prompt(text)


def test_parts_and_stop_reach_the_request(registry):
    request = build_request(parse_prompt("hot dog::2 animal::-0.5 --stop 50"), registry,
                            model="tiny-random")
    assert [(p.text, p.weight) for p in request.prompt_parts] == [("hot dog", 2.0),
                                                                  ("animal", -0.5)]
    assert (request.prompt, request.stop) == ("hot dog::2 animal::-0.5", 50)
    assert request.negative_prompt == ""  # --no stays the negative prompt, not a part


# -- --stop, and the lanes --fast, --relax, --turbo ---------------------------

def test_stop_takes_a_percent_from_10_to_100():
    assert parse_prompt("a fox --stop 10").stop == 10
    assert parse_prompt("a fox --stop 100").stop == 100
    for value in ("9", "101"):
        with pytest.raises(PromptError, match=re.escape(
                f"--stop value '{value}' is out of range: use --stop N, a whole number from 10 "
                "to 100 (the percent of the steps that run).")):
            parse_prompt(f"a fox --stop {value}")


@pytest.mark.parametrize("lane", ["fast", "relax", "turbo"])
def test_a_lane_flag_sets_the_lane(lane):
    assert parse_prompt(f"a fox --{lane}").lane == lane
    assert parse_prompt("a fox").lane is None


def test_one_lane_per_prompt():
    with pytest.raises(PromptError, match=re.escape(
            "--fast and --relax both choose the lane: give one of --fast, --relax or --turbo.")):
        parse_prompt("a fox --fast --relax")
    with pytest.raises(PromptError, match=re.escape("--turbo is given twice")):
        parse_prompt("a fox --turbo --turbo")
    with pytest.raises(PromptError, match=re.escape("--fast takes no value, but '2' follows")):
        parse_prompt("a fox --fast 2")


# -- Midjourney's flags that dreamloop refuses, and strict suggestions --------

@pytest.mark.parametrize(("flag", "offered"), [
    ("--v 6.1", "--v picks a Midjourney model: dreamloop picks one of its own models with "
                "--model NAME (sdxl, tiny-random)."),
    ("--version 7", "--version picks a Midjourney model"),
    ("--niji 6", "--niji picks a Midjourney model"),
    ("--weird 250", "--chaos N makes the four images differ more"),
    ("--w 250", "--w is Midjourney's: dreamloop has no weirdness setting"),
    ("--exp 10", "try --stylize N"),
    ("--sref https://x.png", "--sref (style references) is not offered yet: the nearest is an "
                             "image prompt"),
    ("--sw 100", "--sw (style references) is not offered yet"),
    ("--cref https://x.png", "--cref (character references) is not offered yet"),
    ("--cw 50", "with --iw N for how much it counts"),
    ("--oref https://x.png", "--oref (omni references) is not offered yet"),
    ("--ow 100", "--ow (omni references)"),
    ("--p", "--p (personalization profiles) is Midjourney's and not offered"),
    ("--profile abc", "--profile (personalization profiles)"),
    ("--draft", "use --quality .25 (a quarter of the steps) or --stop N"),
    ("--video", "dreamloop draws still images only"),
    ("--motion high", "dreamloop draws still images only"),
])
def test_midjourney_flags_are_refused_with_what_we_offer(flag, offered):
    with pytest.raises(PromptError) as info:
        parse_prompt(f"a fox {flag}", model_names=["sdxl", "tiny-random"])
    assert offered in str(info.value)
    assert "did you mean" not in str(info.value) and "Unknown flag" not in str(info.value)


@pytest.mark.parametrize("typed", ["--fast", "--stop 50", "--relax", "--turbo", "--iw 1"])
def test_our_midjourney_flags_are_read_not_corrected(typed):
    parse_prompt(f"a fox {typed}")  # today --fast → --aspect and --stop → --steps


@pytest.mark.parametrize(("typed", "hint"), [
    ("--seeed 4", "--seed"), ("--sed 4", "--seed"), ("--stylise 4", "--stylize"),
    ("--stylze 4", None),  # --style or --stylize: no guess
    ("--aspcet 1:2", "--aspect"), ("--qualty 1", "--quality"),
    ("--xyzzy 4", None), ("--st 4", None), ("--ss 4", None), ("--fst", "--fast"),
    ("--chaso 4", "--chaos"),
])
def test_did_you_mean_only_for_a_near_typo(typed, hint):
    with pytest.raises(PromptError) as info:
        parse_prompt(f"a fox {typed}")
    message = str(info.value)
    assert message.startswith(f"Unknown flag {typed.split()[0]}")
    if hint is None:
        assert "did you mean" not in message
    else:
        assert f"(did you mean {hint}?)" in message
