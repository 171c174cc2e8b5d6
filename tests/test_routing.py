"""A/B routing: jobs nobody chose a model for are split between model versions by weight,
among the versions a worker serves now."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from bot.services import BotServices, NotServed
from db.model_versions import ensure_model_version, set_traffic_weight
from flywheel.ratings import chi2_sf
from flywheel.routing import choose_version
from generation.blobs import LocalBlobStore
from generation.queue import JobQueue
from tests.factories import imagine_request


@dataclass(frozen=True)
class Version:
    name: str
    traffic_weight: float


def test_draws_follow_the_weights():
    versions = [Version("a", 1), Version("b", 3), Version("off", 0)]
    rng = random.Random(11)
    counts = Counter(choose_version(versions, rng).name for _ in range(8000))
    assert counts["off"] == 0
    chi2 = (counts["a"] - 2000) ** 2 / 2000 + (counts["b"] - 6000) ** 2 / 6000
    assert chi2_sf(chi2, 1) > 0.001  # consistent with 1 : 3


def test_no_weights_means_no_routing():
    assert choose_version([Version("a", 0)], random.Random(1)) is None


@pytest.fixture
async def services(db, redis_client, keys, registry, tmp_path) -> BotServices:
    services = BotServices(registry=registry, db=db, queue=JobQueue(redis_client, keys),
                           blobs=LocalBlobStore(tmp_path / "blobs"))
    async with db.acquire() as conn:
        for name, model, weight in (("tiny@a", "tiny-random", 1), ("tiny@b", "tiny-random", 3),
                                    ("sd15@c", "sd15", 5)):
            await ensure_model_version(conn, name, model, f"builtin:{name}")
            await set_traffic_weight(conn, name, weight)
    return services


async def serve(services: BotServices, model: str) -> None:
    """A worker saying it serves the model, as a sampling pool does every third of a lease."""
    await services.queue.announce("worker-1", [model])


async def test_routing_uses_only_served_versions_in_proportion(services):
    with pytest.raises(NotServed, match=r"No worker is drawing with the model versions that "
                                        r"get traffic now \(tiny@a, tiny@b, sd15@c\)"):
        await services.route()
    await serve(services, "tiny-random")  # sd15 has the largest weight, but nobody serves it
    counts = Counter([(await services.route()).name for _ in range(1200)])
    assert set(counts) == {"tiny@a", "tiny@b"}
    chi2 = (counts["tiny@a"] - 300) ** 2 / 300 + (counts["tiny@b"] - 900) ** 2 / 900
    assert chi2_sf(chi2, 1) > 0.001


async def test_the_routed_version_is_recorded_on_the_job(services):
    await serve(services, "tiny-random")
    version = await services.route()
    job, _ = await services.start_job(imagine_request(), 1, version_id=version.id)
    assert job.model_version_id == version.id and job.model == "tiny-random"
