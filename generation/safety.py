"""The image classifier: which finished images show nudity, so the bot can apply a server's
image policy (bot/image_policy.py) before anything is posted.

The default is NudeNet's 320n detector (the `nudenet` package ships its ONNX weights, so it
works offline; onnxruntime runs it on the CPU). An image is flagged when the detector finds
any of FLAGGED_CLASSES, exposed genitalia, female breasts, buttocks or anus, with a score
of at least THRESHOLD (0.5); covered parts, faces, feet, bellies, armpits and male chests
never flag. The verdict keeps the label and best score of each detection that made it so.

DREAMLOOP_IMAGE_CLASSIFIER picks one: `nudenet` (the default), `none` (nothing is ever
flagged), or, for tests only, `test-flag-seeds:42,45`, which flags exactly the images drawn
from the listed seeds: the tests cannot ship explicit images, and this lets them drive the
flagged path through the same hook deterministically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

FLAGGED_CLASSES = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED",
                   "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED")
THRESHOLD = 0.5
CLASSIFIERS = ("nudenet", "none")
TEST_PREFIX = "test-flag-seeds:"


@dataclass(frozen=True)
class Verdict:
    """One image's verdict: flagged, and the label → score of each detection that made it so."""

    flagged: bool = False
    labels: dict[str, float] = field(default_factory=dict)


class Classifier(Protocol):
    def classify(self, images: Sequence[Image.Image], seeds: Sequence[int]) -> list[Verdict]:
        """A verdict per image, in order; seeds: each image's seed (only the test one reads
        them)."""


class NoClassifier:
    """DREAMLOOP_IMAGE_CLASSIFIER=none: nothing is flagged."""

    def classify(self, images, seeds) -> list[Verdict]:
        return [Verdict() for _ in images]


class NudeNetClassifier:
    def __init__(self):
        from nudenet import NudeDetector  # onnxruntime and OpenCV: only where it is used

        self.detector = NudeDetector()

    def classify(self, images, seeds) -> list[Verdict]:
        return [self._verdict(image) for image in images]

    def _verdict(self, image: Image.Image) -> Verdict:
        # NudeNet's own file path reads images with OpenCV, in BGR order: give it the same.
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        labels: dict[str, float] = {}
        for found in self.detector.detect(pixels):
            if found["class"] in FLAGGED_CLASSES and found["score"] >= THRESHOLD:
                labels[found["class"]] = max(round(found["score"], 3),
                                             labels.get(found["class"], 0.0))
        return Verdict(bool(labels), labels)


class SeedListClassifier:
    """For tests only: flags the images drawn from the listed seeds."""

    def __init__(self, seeds: Sequence[int]):
        self.seeds = frozenset(seeds)

    def classify(self, images, seeds) -> list[Verdict]:
        return [Verdict(True, {"TEST_FLAGGED_SEED": 1.0}) if seed in self.seeds else Verdict()
                for seed in seeds]


def check_classifier_name(name: str) -> str:
    """The name as given when it is one load_classifier knows; ValueError otherwise."""
    if name in CLASSIFIERS:
        return name
    if name.startswith(TEST_PREFIX):
        _test_seeds(name)
        return name
    raise ValueError(f"image_classifier is {name!r}: allowed: {', '.join(CLASSIFIERS)} "
                     f"(or {TEST_PREFIX}SEED,SEED… in tests)")


def load_classifier(name: str) -> Classifier:
    """The classifier named by DREAMLOOP_IMAGE_CLASSIFIER, loaded (once per worker)."""
    check_classifier_name(name)
    if name == "nudenet":
        return NudeNetClassifier()
    if name == "none":
        return NoClassifier()
    return SeedListClassifier(_test_seeds(name))


def _test_seeds(name: str) -> list[int]:
    try:
        return [int(seed) for seed in name.removeprefix(TEST_PREFIX).split(",")]
    except ValueError:
        raise ValueError(f"image_classifier is {name!r}: after {TEST_PREFIX} a comma-separated "
                         "list of whole-number seeds") from None
