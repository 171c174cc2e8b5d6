"""`dreamloop bench engine`: the engine against a plain diffusers call, and image encoding.

Both sides run in the same process on the same pipeline, alternating, so a
busy machine slows both alike; the figure that matters is the ratio.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from generation.contract import GenerationRequest, JobKind
from generation.engine import Engine
from generation.images import encode_grid, encode_png, make_grid
from generation.registry import ModelSpec

ENCODE_SIDE = 1024  # full images of an SDXL-class model
BENCH_SEED = 1234


def bench_engine(spec: ModelSpec, repeats: int, report: Callable[[str], None]) -> dict:
    """Median seconds per 4-image job, engine vs plain pipeline call, and encoding times."""
    if repeats < 1:
        raise ValueError(f"repeats is {repeats}: at least 1")
    engine = Engine.load(spec)
    request = _bench_request(spec)
    figures = {"model": spec.name, "device": str(engine.device), "images_per_job": 4,
               "size": f"{request.width}x{request.height}", "steps": request.steps,
               "repeats": repeats}
    figures.update(_time_engine_vs_plain(engine, request, repeats, report))
    report("encoding four 1024² images on one core…")
    figures.update(_time_encoding(repeats))
    return figures


def _bench_request(spec: ModelSpec) -> GenerationRequest:
    return GenerationRequest(
        kind=JobKind.IMAGINE, prompt="a red fox in snow, golden hour", model=spec.name,
        width=spec.base_resolution, height=spec.base_resolution, steps=spec.steps,
        guidance=spec.guidance, sampler=spec.sampler, seed=BENCH_SEED,
        negative_prompt=spec.negative_prompt)


def _time_engine_vs_plain(engine: Engine, request: GenerationRequest, repeats: int,
                          report: Callable[[str], None]) -> dict:
    def plain_call():
        # What a diffusers user writes by hand: same pipeline, prompts, seeds and settings.
        return engine.pipeline(
            prompt=[request.prompt] * 4, negative_prompt=[request.negative_prompt] * 4 or None,
            width=request.width, height=request.height, num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            generator=[torch.Generator("cpu").manual_seed(s) for s in request.seeds]).images

    report("warming up…")
    engine.run(request)
    plain_call()
    engine_times, plain_times = [], []
    for i in range(repeats):
        report(f"round {i + 1}/{repeats}")
        engine_times.append(_seconds(lambda: engine.run(request)))
        plain_times.append(_seconds(plain_call))
    engine_s, plain_s = statistics.median(engine_times), statistics.median(plain_times)
    return {"engine_s_per_job": round(engine_s, 4), "plain_s_per_job": round(plain_s, 4),
            "engine_vs_plain": round(engine_s / plain_s, 3)}


def _time_encoding(repeats: int) -> dict:
    images = [_photo_like(ENCODE_SIDE, seed) for seed in range(4)]
    with _one_core():
        grid_times, png_times = [], []
        for _ in range(repeats):
            grid_times.append(_seconds(lambda: encode_grid(make_grid(images), "webp")))
            png_times.append(_seconds(lambda: [encode_png(i) for i in images]))
    grid_bytes = len(encode_grid(make_grid(images), "webp"))
    png_bytes = sum(len(encode_png(i)) for i in images)
    return {"grid_encode_ms": round(1000 * statistics.median(grid_times), 1),
            "grid_bytes": grid_bytes, "grid_format": "webp",
            "png4_encode_ms": round(1000 * statistics.median(png_times), 1),
            "png4_bytes": png_bytes}


def _photo_like(side: int, seed: int) -> Image.Image:
    """Smooth colour regions plus fine grain: compresses like a photo, unlike pure noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.normal(0, 4, smooth.shape).astype(np.int16)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


class _one_core:
    """Pin the process to one CPU while encoding, so the figure is per core."""

    def __enter__(self):
        self.saved = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if self.saved:
            os.sched_setaffinity(0, {min(self.saved)})

    def __exit__(self, *exc):
        if self.saved:
            os.sched_setaffinity(0, self.saved)


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start
