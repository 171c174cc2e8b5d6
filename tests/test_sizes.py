"""Aspect-ratio buckets: their shape rules, and snapping an aspect ratio to the nearest one."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from generation.sizes import size_buckets, snap_to_bucket

BASES = (64, 512, 768, 1024)


@pytest.mark.parametrize("base", BASES)
def test_bucket_sides_are_multiples_of_64_from_64_to_2048(base):
    for width, height in size_buckets(base):
        assert width % 64 == 0 and height % 64 == 0, (width, height)
        assert 64 <= width <= 2048 and 64 <= height <= 2048, (width, height)


@pytest.mark.parametrize("base", BASES)
def test_bucket_ratios_are_within_1_to_4_and_4_to_1(base):
    for width, height in size_buckets(base):
        assert 1 / 4 <= width / height <= 4, (width, height)


@pytest.mark.parametrize("base", BASES)
def test_bucket_areas_are_half_to_twice_the_base_area(base):
    for width, height in size_buckets(base):
        assert 0.5 * base**2 <= width * height <= 2 * base**2, (width, height)


@pytest.mark.parametrize("base", BASES)
def test_the_square_base_is_a_bucket(base):
    assert (base, base) in size_buckets(base)


@pytest.mark.parametrize("base", BASES)
def test_buckets_come_in_transposed_pairs(base):
    buckets = size_buckets(base)
    assert {(h, w) for w, h in buckets} == set(buckets)


@pytest.mark.parametrize("base", BASES)
def test_buckets_are_distinct_and_widest_first(base):
    buckets = size_buckets(base)
    assert len(set(buckets)) == len(buckets)
    ratios = [w / h for w, h in buckets]
    assert ratios == sorted(ratios, reverse=True)


def test_a_64_base_has_three_buckets():
    assert size_buckets(64) == [(128, 64), (64, 64), (64, 128)]


@pytest.mark.parametrize(("w", "h", "base", "bucket"), [
    (16, 9, 1024, (1344, 768)),
    (1, 1, 1024, (1024, 1024)),
    (9, 16, 1024, (768, 1344)),
    (16, 9, 64, (128, 64)),
    (1, 1, 512, (512, 512)),
    (4, 1, 1024, (2048, 512)),
    (1, 4, 1024, (512, 2048)),
    (100, 1, 1024, (2048, 512)),  # beyond 4:1 snaps to the widest bucket
])
def test_known_snaps(w, h, base, bucket):
    assert snap_to_bucket(w, h, base) == bucket


def distance(bucket: tuple[int, int], w: int, h: int) -> float:
    return abs(math.log(bucket[0] / bucket[1]) - math.log(w / h))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 100), st.integers(1, 100), st.sampled_from(BASES))
def test_snap_returns_the_nearest_bucket(w, h, base):
    assume(max(w, h) <= 4 * min(w, h))
    buckets = size_buckets(base)
    snapped = snap_to_bucket(w, h, base)
    assert snapped in buckets
    nearest = distance(snapped, w, h)
    assert not [b for b in buckets if distance(b, w, h) < nearest]


@pytest.mark.parametrize("base", [100, 32, 4096, 0, -64, 2112])
def test_a_bad_base_resolution_is_refused(base):
    message = f"base_resolution is {base}: a multiple of 64 from 64 to 2048"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        size_buckets(base)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        snap_to_bucket(16, 9, base)


@pytest.mark.parametrize(("w", "h"), [(0, 1), (1, 0), (-16, 9), (16, -9), (0, 0)])
def test_a_non_positive_aspect_is_refused(w, h):
    message = f"aspect is {w}:{h}: both sides must be positive"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        snap_to_bucket(w, h, 1024)
