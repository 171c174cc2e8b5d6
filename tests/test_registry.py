"""The model registry: the shipped file, custom files, and the message for each mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generation.contract import MAX_GUIDANCE, MAX_STEPS, SAMPLERS, GenerationRequest, JobKind
from generation.registry import (
    DTYPES,
    ModelSpec,
    Registry,
    RegistryError,
    UnknownModel,
    load_registry,
    tiny_random_spec,
)
from generation.sizes import size_buckets

ENTRY = {
    "source": "me/my-model",
    "pipeline": "StableDiffusionPipeline",
    "dtype": "float16",
    "base_resolution": 768,
    "steps": 25,
    "guidance": 6.5,
    "sampler": "dpmpp_2m",
    "license": "MIT",
}
KNOWN_KEYS = ("base_resolution, dtype, guidance, license, negative_prompt, pipeline, sampler, "
              "source, steps, upscale_strength")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def write_registry(tmp_path: Path, entries: dict[str, dict], default: str | None = None) -> Path:
    lines = [] if default is None else [f"default = {toml_value(default)}", ""]
    for name, entry in entries.items():
        lines.append(f"[models.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in entry.items()]
        lines.append("")
    path = tmp_path / "models.toml"
    path.write_text("\n".join(lines))
    return path


def refused(message: str):
    return pytest.raises(RegistryError, match=f"^{re.escape(message)}$")


# -- the shipped registry ---------------------------------------------------------------


@pytest.fixture
def shipped(tmp_path) -> Registry:
    return load_registry(None, tmp_path)


def test_the_shipped_registry_has_its_models_and_sdxl_is_the_default(shipped):
    assert sorted(shipped.models) == ["flux-schnell", "sd15", "sdxl", "tiny-random"]
    assert shipped.default == "sdxl"
    assert shipped.get().name == "sdxl"


def test_every_shipped_entry_is_valid(shipped):
    for name, spec in shipped.models.items():
        assert spec.name == name
        assert spec.source and spec.pipeline and spec.license
        assert spec.dtype in DTYPES
        assert spec.sampler in SAMPLERS
        assert 1 <= spec.steps <= MAX_STEPS
        assert 0 <= spec.guidance <= MAX_GUIDANCE
        assert 0.01 <= spec.upscale_strength <= 1
        assert (spec.base_resolution, spec.base_resolution) in size_buckets(spec.base_resolution)
        assert spec.builtin == (name == "tiny-random")


@pytest.mark.parametrize("name", ["sdxl", "flux-schnell", "sd15", "tiny-random"])
def test_every_shipped_models_defaults_make_a_valid_request(shipped, name):
    spec = shipped.get(name)
    request = GenerationRequest(
        kind=JobKind.IMAGINE, prompt="a test", model=name, width=spec.base_resolution,
        height=spec.base_resolution, steps=spec.steps, guidance=spec.guidance,
        sampler=spec.sampler, seed=0, negative_prompt=spec.negative_prompt)
    assert request.model == name


def test_shipped_entries_read_their_values(shipped):
    sdxl, flux, sd15 = shipped.get("sdxl"), shipped.get("flux-schnell"), shipped.get("sd15")
    assert (sdxl.base_resolution, sdxl.dtype, sdxl.steps) == (1024, "bfloat16", 30)
    assert (flux.sampler, flux.guidance, flux.steps) == ("flow_euler", 0.0, 4)
    assert (sd15.base_resolution, sd15.sampler) == (512, "dpmpp_2m_karras")
    assert flux.negative_prompt == "" and flux.upscale_strength == 0.3


def test_tiny_random_lives_under_the_data_dir(tmp_path):
    spec = load_registry(None, tmp_path).get("tiny-random")
    assert Path(spec.source) == tmp_path / "models" / "tiny-random"
    assert spec == tiny_random_spec(tmp_path)
    assert spec.builtin and spec.base_resolution == 64


# -- custom files ---------------------------------------------------------------------------


def test_a_custom_registry_with_a_default_is_used(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY}, default="mine")
    registry = load_registry(path, tmp_path / "data")
    assert sorted(registry.models) == ["mine", "tiny-random"]
    assert registry.default == "mine"
    spec = registry.get()
    assert spec == ModelSpec(name="mine", **ENTRY)
    assert (spec.negative_prompt, spec.upscale_strength, spec.builtin) == ("", 0.3, False)
    assert registry.get("tiny-random").source == str(tmp_path / "data" / "models" / "tiny-random")


def test_a_custom_registry_without_a_default_defaults_to_tiny_random(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY})
    assert load_registry(path, tmp_path).get().name == "tiny-random"


def test_optional_keys_are_read(tmp_path):
    entry = ENTRY | {"negative_prompt": "ugly", "upscale_strength": 0.5}
    spec = load_registry(write_registry(tmp_path, {"mine": entry}), tmp_path).get("mine")
    assert (spec.negative_prompt, spec.upscale_strength) == ("ugly", 0.5)


def test_an_empty_file_holds_only_tiny_random(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("")
    registry = load_registry(path, tmp_path)
    assert list(registry.models) == ["tiny-random"] and registry.default == "tiny-random"


# -- mistakes in a custom file --------------------------------------------------------------


def test_an_unknown_key_is_named_with_the_known_ones(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY | {"colour": "red", "aspect": 1}})
    with refused(f"{path}: models.mine has unknown key(s) aspect, colour; known: {KNOWN_KEYS}"):
        load_registry(path, tmp_path)


def test_name_and_builtin_are_not_keys_a_file_may_set(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY | {"builtin": True}})
    with refused(f"{path}: models.mine has unknown key(s) builtin; known: {KNOWN_KEYS}"):
        load_registry(path, tmp_path)


@pytest.mark.parametrize("missing", [("license",), ("steps", "source"), ("base_resolution",)])
def test_missing_keys_are_named(tmp_path, missing):
    entry = {k: v for k, v in ENTRY.items() if k not in missing}
    path = write_registry(tmp_path, {"mine": entry})
    with refused(f"{path}: models.mine is missing {', '.join(sorted(missing))}"):
        load_registry(path, tmp_path)


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("dtype", "int8", "allowed: bfloat16, float16, float32"),
    ("dtype", "fp16", "allowed: bfloat16, float16, float32"),
    ("sampler", "lms", "allowed: euler, euler_a, dpmpp_2m, dpmpp_2m_karras, ddim, unipc, "
                       "flow_euler"),
    ("steps", 0, "allowed 1 to 150"),
    ("steps", 151, "allowed 1 to 150"),
    ("steps", "30", "must be a whole number"),
    ("steps", True, "must be a whole number"),
    ("guidance", -1.0, "allowed 0 to 30.0"),
    ("guidance", 30.5, "allowed 0 to 30.0"),
    ("upscale_strength", 0, "allowed 0.01 to 1"),
    ("upscale_strength", 1.5, "allowed 0.01 to 1"),
    ("license", 5, "must be text"),
])
def test_a_bad_value_is_named_with_what_is_allowed(tmp_path, key, value, allowed):
    path = write_registry(tmp_path, {"mine": ENTRY | {key: value}})
    with refused(f"{path}: models.mine.{key} is {value!r}: {allowed}"):
        load_registry(path, tmp_path)


@pytest.mark.parametrize("base", [1000, 32, 4096])
def test_a_bad_base_resolution_is_named(tmp_path, base):
    path = write_registry(tmp_path, {"mine": ENTRY | {"base_resolution": base}})
    with refused(f"{path}: models.mine.base_resolution is {base}: a multiple of 64 "
                 f"from 64 to 2048"):
        load_registry(path, tmp_path)


def test_a_text_base_resolution_is_named(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY | {"base_resolution": "1024"}})
    with pytest.raises(RegistryError, match=re.escape("models.mine") + ".*base_resolution"):
        load_registry(path, tmp_path)


def test_a_default_naming_a_missing_model_is_refused(tmp_path):
    path = write_registry(tmp_path, {"mine": ENTRY}, default="sdxl")
    with refused(f"{path}: default is 'sdxl', which is not one of the models "
                 f"(mine, tiny-random)"):
        load_registry(path, tmp_path)


def test_invalid_toml_is_refused(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("[models.mine\nsource = 'x'\n")
    with pytest.raises(RegistryError, match="^" + re.escape(f"{path}: not valid TOML (")):
        load_registry(path, tmp_path)


def test_the_first_bad_entry_stops_loading(tmp_path):
    path = write_registry(tmp_path, {"good": ENTRY, "bad": ENTRY | {"dtype": "int4"}})
    with pytest.raises(RegistryError, match=re.escape("models.bad.dtype is 'int4'")):
        load_registry(path, tmp_path)


# -- Registry.get ---------------------------------------------------------------------------


def test_get_none_is_the_default(shipped):
    assert shipped.get(None) is shipped.models["sdxl"]
    assert shipped.get("sd15") is shipped.models["sd15"]


def test_get_an_unknown_model_lists_the_known_ones(shipped):
    message = "model is 'sdxl-turbo': known models are flux-schnell, sd15, sdxl, tiny-random"
    with pytest.raises(UnknownModel, match=f"^{re.escape(message)}$") as caught:
        shipped.get("sdxl-turbo")
    assert isinstance(caught.value, RegistryError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.name == "sdxl-turbo"
    assert caught.value.known == ["flux-schnell", "sd15", "sdxl", "tiny-random"]


@pytest.mark.parametrize("key", ["source", "pipeline"])
def test_empty_text_is_refused(tmp_path, key):
    path = write_registry(tmp_path, {"mine": ENTRY | {key: ""}})
    with refused(f"{path}: models.mine.{key} is empty: must be non-empty text"):
        load_registry(path, tmp_path)


def test_tiny_random_cannot_be_redefined(tmp_path):
    path = write_registry(tmp_path, {"tiny-random": ENTRY})
    with refused(f"{path}: models.tiny-random is built in: give your model another name"):
        load_registry(path, tmp_path)


@pytest.mark.parametrize("name", ["My Model", "", "-dash", "x" * 33])
def test_model_names_are_one_lowercase_token(tmp_path, name):
    path = write_registry(tmp_path, {f'"{name}"': ENTRY})
    with pytest.raises(RegistryError, match="lowercase letters, digits"):
        load_registry(path, tmp_path)


@pytest.mark.parametrize(("toml", "message"), [
    ('[models]\nmine = "me/my-model"\n', "models.mine must be a table of settings"),
    ("models = 5\n", "models must be a table of [models.NAME] tables"),
    ('defualt = "mine"\n', "unknown key(s) defualt; known: default, models"),
])
def test_a_file_of_the_wrong_shape_is_refused(tmp_path, toml, message):
    path = tmp_path / "models.toml"
    path.write_text(toml)
    with refused(f"{path}: {message}"):
        load_registry(path, tmp_path)
