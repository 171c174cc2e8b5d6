"""The image classifier (generation/safety.py): NudeNet's packaged detector loads with no
network and gives structured verdicts on real images; verdicts travel in the result and
are stored with each image."""

from __future__ import annotations

import socket
import time

import pytest
from PIL import Image, ImageDraw

from db.images import get_image, job_images
from db.jobs import complete_job, create_job
from db.model_versions import ensure_model_version
from dreamloop.settings import Settings
from generation.contract import GenerationResult, InvalidRequest, ResultImage
from generation.safety import (
    NoClassifier,
    NudeNetClassifier,
    SeedListClassifier,
    Verdict,
    check_classifier_name,
    load_classifier,
)
from tests.factories import imagine_request


def photo_like() -> Image.Image:
    """A landscape drawn with Pillow: sky, sun, hills, a house."""
    image = Image.new("RGB", (512, 384), (120, 170, 225))
    draw = ImageDraw.Draw(image)
    draw.ellipse((380, 40, 460, 120), fill=(250, 215, 90))
    draw.polygon([(0, 260), (160, 170), (330, 250), (512, 180), (512, 384), (0, 384)],
                 fill=(70, 140, 60))
    draw.rectangle((120, 230, 220, 320), fill=(190, 110, 80))
    draw.polygon([(110, 230), (170, 180), (230, 230)], fill=(120, 50, 40))
    return image


@pytest.fixture
def no_network(monkeypatch):
    """Any outbound connection fails the test: the classifier must work offline."""
    def refuse(self, address, *args):
        raise AssertionError(f"the classifier tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_nudenet_loads_offline_and_passes_ordinary_images(no_network, tiny_engine):
    classifier = load_classifier("nudenet")
    assert isinstance(classifier, NudeNetClassifier)
    request = imagine_request(seed=11)
    images = [*tiny_engine.run(request), photo_like()]
    classifier.classify(images[:1], [0])  # the first run sets onnxruntime up
    started = time.perf_counter()
    verdicts = classifier.classify(images, [*request.seeds, 0])
    per_image_ms = (time.perf_counter() - started) * 1000 / len(images)
    print(f"nudenet on this CPU: {per_image_ms:.1f} ms per image")
    assert verdicts == [Verdict(flagged=False, labels={})] * 5
    assert per_image_ms < 2000


def test_the_test_classifier_flags_exactly_the_listed_seeds():
    classifier = load_classifier("test-flag-seeds:5,7")
    assert isinstance(classifier, SeedListClassifier)
    images = [photo_like()] * 4
    assert [v.flagged for v in classifier.classify(images, [4, 5, 6, 7])] == [
        False, True, False, True]
    assert NoClassifier().classify(images, [5, 6, 7, 8]) == [Verdict()] * 4


@pytest.mark.parametrize(("name", "message"), [
    ("nudity", "image_classifier is 'nudity': allowed: nudenet, none"),
    ("test-flag-seeds:one", "a comma-separated list of whole-number seeds")])
def test_an_unknown_classifier_is_refused_by_name(name, message, monkeypatch):
    with pytest.raises(ValueError, match=message):
        check_classifier_name(name)
    monkeypatch.setenv("DREAMLOOP_IMAGE_CLASSIFIER", name)
    with pytest.raises(ValueError, match="image_classifier"):
        Settings()


def result_with(flagged: bool, labels: dict) -> GenerationResult:
    image = ResultImage(slot=1, seed=3, key="images/9/1.png", width=64, height=64,
                        sha256="a" * 64, flagged=flagged, labels=labels)
    plain = ResultImage(slot=2, seed=4, key="images/9/2.png", width=64, height=64,
                        sha256="b" * 64)
    return GenerationResult(job_id="9", images=(image, plain), gpu_ms=5, encode_ms=2,
                            batch_size=1, classify_ms=3)


def test_verdicts_round_trip_in_the_result():
    result = result_with(True, {"BUTTOCKS_EXPOSED": 0.81})
    again = GenerationResult.from_json(result.to_json())
    assert again == result
    assert (again.images[0].flagged, again.images[0].labels, again.classify_ms) == (
        True, {"BUTTOCKS_EXPOSED": 0.81}, 3)
    assert (again.images[1].flagged, again.images[1].labels) == (False, {})


@pytest.mark.parametrize("labels", [{"X": 2.0}, {"X": True}, {"": 0.5}, {"X": "high"}])
def test_bad_labels_are_refused(labels):
    with pytest.raises(InvalidRequest, match="labels is"):
        result_with(True, labels)


async def test_verdicts_are_stored_with_each_image(db):
    async with db.acquire() as conn:
        version = await ensure_model_version(conn, "tiny-random", "tiny-random", "builtin")
        job, _ = await create_job(conn, imagine_request(user_id=1, guild_id=2, channel_id=3),
                                  model_version_id=version.id)
        images = result_with(True, {"ANUS_EXPOSED": 0.6}).images
        assert await complete_job(conn, GenerationResult(str(job.id), images, 5, 2, 1, 3))
        flagged = await get_image(conn, job.id, 1)
        assert (flagged.flagged, flagged.safety_labels) == (True, {"ANUS_EXPOSED": 0.6})
        assert [(i.slot, i.flagged, i.safety_labels) for i in await job_images(conn, job.id)
                ] == [(1, True, {"ANUS_EXPOSED": 0.6}), (2, False, {})]
