"""Aspect-ratio buckets: the sizes a model is asked to draw at.

A model draws best near the pixel count it was trained at, so each bucket
keeps about base² pixels, with both sides multiples of 64 (what every
diffusers VAE and UNet accepts). Few fixed shapes also keep compiled
kernels and batches reusable.
"""

from __future__ import annotations

import math

from generation.contract import MAX_ASPECT, MAX_SIDE, MIN_SIDE, SIZE_STEP


def size_buckets(base_resolution: int) -> list[tuple[int, int]]:
    """All (width, height) buckets for a model trained at base_resolution², widest first."""
    if base_resolution % SIZE_STEP or not MIN_SIDE <= base_resolution <= MAX_SIDE:
        raise ValueError(f"base_resolution is {base_resolution}: a multiple of {SIZE_STEP} "
                         f"from {MIN_SIDE} to {MAX_SIDE}")
    area = base_resolution**2
    buckets = set()
    for width in range(MIN_SIDE, MAX_SIDE + 1, SIZE_STEP):
        height = max(MIN_SIDE, round(area / width / SIZE_STEP) * SIZE_STEP)
        if _fits(width, height, area):
            buckets.update({(width, height), (height, width)})
    return sorted(buckets, key=lambda wh: wh[1] / wh[0])


def _fits(width: int, height: int, area: int) -> bool:
    ratio = max(width, height) / min(width, height)
    return height <= MAX_SIDE and ratio <= MAX_ASPECT and 0.5 <= width * height / area <= 2.0


def snap_to_bucket(aspect_w: int, aspect_h: int, base_resolution: int) -> tuple[int, int]:
    """The bucket whose shape is nearest to aspect_w:aspect_h (compared as log ratios)."""
    if aspect_w <= 0 or aspect_h <= 0:
        raise ValueError(f"aspect is {aspect_w}:{aspect_h}: both sides must be positive")
    wanted = math.log(aspect_w / aspect_h)
    return min(size_buckets(base_resolution),
               key=lambda wh: (abs(math.log(wh[0] / wh[1]) - wanted), -wh[0] * wh[1]))
