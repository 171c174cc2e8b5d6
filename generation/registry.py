"""The model registry: named models read from a TOML file.

Each entry names a diffusers pipeline (a hub id or a local folder) and the
defaults a job gets when the member does not choose. `tiny-random` is
built in: a random-weight pipeline made in code, for tests and smoke runs.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, dataclass, fields
from importlib import resources
from pathlib import Path

from generation.contract import MAX_GUIDANCE, MAX_STEPS, SAMPLERS
from generation.sizes import size_buckets

DTYPES = ("bfloat16", "float16", "float32")
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")  # one token, as --model NAME takes
TINY_RANDOM = "tiny-random"


class RegistryError(ValueError):
    """The registry file or one of its entries is wrong; the message names the key."""


class UnknownModel(RegistryError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(f"model is {name!r}: known models are {', '.join(known)}")


class ModelLoadError(Exception):
    """A model could not be loaded; the message names it, where from, and why."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: str  # hub id or local folder; for the built-in tiny-random, where it is saved
    pipeline: str  # diffusers text-to-image pipeline class, e.g. StableDiffusionXLPipeline
    dtype: str  # used on CUDA; the CPU always runs float32
    base_resolution: int
    steps: int
    guidance: float
    sampler: str
    license: str
    negative_prompt: str = ""  # added unless the member writes --style raw
    upscale_strength: float = 0.3  # img2img strength over the 2× resized image
    builtin: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not MODEL_NAME.fullmatch(self.name):
            raise RegistryError(f"model name {self.name!r}: lowercase letters, digits, '.', '_' "
                                "and '-', starting with a letter or digit, at most 32")
        for f in fields(self):
            _check_type(self, f.name)
        for key in ("source", "pipeline", "license"):
            if not getattr(self, key):
                raise RegistryError(f"models.{self.name}.{key} is empty: must be non-empty text")
        _check_choice(self, "dtype", DTYPES)
        _check_choice(self, "sampler", SAMPLERS)
        _check_number(self, "steps", 1, MAX_STEPS)
        _check_number(self, "guidance", 0, MAX_GUIDANCE)
        _check_number(self, "upscale_strength", 0.01, 1)
        try:
            size_buckets(self.base_resolution)
        except ValueError as error:
            raise RegistryError(f"models.{self.name}.{error}") from None


# TOML gives ints for whole numbers: a float field takes both, an int field only ints.
_TYPES = {"base_resolution": int, "steps": int, "guidance": int | float,
          "upscale_strength": int | float, "builtin": bool}


_TYPE_NAMES = {int: "a whole number", str: "text", bool: "true or false"}


def _check_type(spec: ModelSpec, key: str) -> None:
    value, expected = getattr(spec, key), _TYPES.get(key, str)
    if isinstance(value, bool) is not (expected is bool) or not isinstance(value, expected):
        wanted = _TYPE_NAMES.get(expected, "a number")
        raise RegistryError(f"models.{spec.name}.{key} is {value!r}: must be {wanted}")


def _check_choice(spec: ModelSpec, key: str, allowed: tuple[str, ...]) -> None:
    if getattr(spec, key) not in allowed:
        raise RegistryError(f"models.{spec.name}.{key} is {getattr(spec, key)!r}: "
                            f"allowed: {', '.join(allowed)}")


def _check_number(spec: ModelSpec, key: str, low: float, high: float) -> None:
    value = getattr(spec, key)
    if not low <= value <= high:
        raise RegistryError(f"models.{spec.name}.{key} is {value!r}: allowed {low} to {high}")


def tiny_random_spec(data_dir: Path) -> ModelSpec:
    """The built-in random-weight pipeline. It renders noise; it exists for tests and smoke runs."""
    return ModelSpec(
        name=TINY_RANDOM, source=str(data_dir / "models" / TINY_RANDOM),
        pipeline="StableDiffusionPipeline", dtype="float32", base_resolution=64,
        steps=4, guidance=7.5, sampler="euler", license="none: random weights, renders noise",
        builtin=True,
    )


@dataclass(frozen=True)
class Registry:
    models: dict[str, ModelSpec]
    default: str

    def get(self, name: str | None = None) -> ModelSpec:
        """The named model, or the default one when name is None."""
        name = self.default if name is None else name
        if name not in self.models:
            raise UnknownModel(name, sorted(self.models))
        return self.models[name]


def load_registry(path: Path | None, data_dir: Path) -> Registry:
    """Read the registry TOML (the shipped one when path is None) and add tiny-random."""
    where = str(path) if path else "shipped models.toml"
    try:
        return _registry_from_table(_read_toml(path), data_dir)
    except RegistryError as error:
        raise RegistryError(f"{where}: {error}") from None


def _read_toml(path: Path | None) -> dict:
    text = path.read_text() if path else resources.files("generation").joinpath(
        "models.toml").read_text()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"not valid TOML ({error})") from None


def _registry_from_table(table: dict, data_dir: Path) -> Registry:
    unknown = sorted(set(table) - {"default", "models"})
    if unknown:
        raise RegistryError(f"unknown key(s) {', '.join(unknown)}; known: default, models")
    entries = table.get("models", {})
    if not isinstance(entries, dict):
        raise RegistryError("models must be a table of [models.NAME] tables")
    if TINY_RANDOM in entries:
        raise RegistryError(f"models.{TINY_RANDOM} is built in: give your model another name")
    models = {name: _spec_from_table(name, entry) for name, entry in entries.items()}
    models[TINY_RANDOM] = tiny_random_spec(data_dir)
    default = table.get("default", TINY_RANDOM)
    if not isinstance(default, str) or default not in models:
        raise RegistryError(f"default is {default!r}, which is not one of the models "
                            f"({', '.join(sorted(models))})")
    return Registry(models=models, default=default)


def _spec_from_table(name: str, entry: dict) -> ModelSpec:
    if not isinstance(entry, dict):
        raise RegistryError(f"models.{name} must be a table of settings")
    known = {f.name for f in fields(ModelSpec)} - {"name", "builtin"}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise RegistryError(f"models.{name} has unknown key(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known))}")
    missing = sorted(f.name for f in fields(ModelSpec)
                     if f.name in known - set(entry) and f.default is MISSING)
    if missing:
        raise RegistryError(f"models.{name} is missing {', '.join(missing)}")
    return ModelSpec(name=name, **entry)
