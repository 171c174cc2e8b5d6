"""Small builders of valid contract objects for tests."""

from __future__ import annotations

import hashlib

from generation.contract import GenerationRequest, GenerationResult, JobKind, ResultImage


def imagine_request(**changes) -> GenerationRequest:
    fields = dict(kind=JobKind.IMAGINE, prompt="a red fox in snow", model="tiny-random",
                  width=64, height=64, steps=4, guidance=7.5, sampler="euler", seed=7)
    return GenerationRequest(**(fields | changes))


def result_for(job_id: int, request: GenerationRequest, gpu_ms: int = 1200) -> GenerationResult:
    """The result a worker would report: one image per seed, under deterministic keys."""
    images = tuple(
        ResultImage(slot=slot, seed=seed, key=f"images/{job_id}/{slot}.png", width=request.width,
                    height=request.height, sha256=hashlib.sha256(f"{job_id}/{slot}".encode())
                    .hexdigest())
        for slot, seed in enumerate(request.seeds, start=1))
    return GenerationResult(job_id=str(job_id), images=images, gpu_ms=gpu_ms, encode_ms=30,
                            batch_size=1)
