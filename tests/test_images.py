"""The grid members see and the full images we keep."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.images import encode_grid, encode_png, fit_upload, make_grid, open_image

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def solid(colour, size=(64, 48)) -> Image.Image:
    return Image.new("RGB", size, colour)


def noisy(side: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))


def test_grid_puts_slot_1_top_left_and_slot_4_bottom_right():
    grid = make_grid([solid(c) for c in COLOURS])
    assert grid.size == (128, 96)
    centres = [(32, 24), (96, 24), (32, 72), (96, 72)]
    assert [grid.getpixel(xy) for xy in centres] == COLOURS


@pytest.mark.parametrize(("count", "size"), [(1, (64, 48)), (2, (128, 48)), (3, (128, 96))])
def test_grid_of_fewer_images(count, size):
    grid = make_grid([solid(c) for c in COLOURS[:count]])
    assert grid.size == size
    if count == 3:
        assert grid.getpixel((96, 72)) == (32, 32, 32)  # the empty slot


@pytest.mark.parametrize("count", [0, 5])
def test_grid_holds_one_to_four_images(count):
    with pytest.raises(ValueError, match=f"images has {count} items: a grid holds 1 to 4"):
        make_grid([solid((0, 0, 0))] * count)


def test_grid_needs_one_size():
    with pytest.raises(ValueError, match="a grid needs one size"):
        make_grid([solid((0, 0, 0)), solid((0, 0, 0), (32, 32))])


@pytest.mark.parametrize(("fmt", "magic"), [("webp", b"RIFF"), ("jpeg", b"\xff\xd8"),
                                            ("png", b"\x89PNG")])
def test_grid_encodes_in_the_asked_format(fmt, magic):
    data = encode_grid(make_grid([solid(c) for c in COLOURS]), fmt)
    assert data.startswith(magic)
    assert Image.open(io.BytesIO(data)).size == (128, 96)


def test_grid_over_the_budget_loses_quality_then_size_but_fits():
    grid = make_grid([noisy(256, seed) for seed in range(4)])
    full = encode_grid(grid, "webp")
    budget = len(full) // 5
    small = encode_grid(grid, "webp", max_bytes=budget)
    assert len(small) <= budget
    shrunk = Image.open(io.BytesIO(small))
    assert shrunk.width < grid.width and shrunk.width / shrunk.height == pytest.approx(1, abs=0.01)


def test_a_budget_too_small_for_any_grid_is_an_error():
    with pytest.raises(ValueError, match="max_bytes is 10: too small for any readable webp grid"):
        encode_grid(make_grid([noisy(64)]), "webp", max_bytes=10)


def test_unknown_grid_format_is_an_error():
    with pytest.raises(ValueError, match="fmt is 'gif': allowed: webp, jpeg, jpg, png"):
        encode_grid(solid((0, 0, 0)), "gif")


def test_full_images_are_lossless_png():
    image = noisy(128)
    data = encode_png(image)
    assert data.startswith(b"\x89PNG")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(image))


def test_open_image_reads_png_jpeg_and_webp_as_rgb():
    for fmt in ("PNG", "JPEG", "WEBP"):
        buffer = io.BytesIO()
        solid((10, 200, 30), (32, 32)).save(buffer, fmt)
        image = open_image(buffer.getvalue())
        assert image.mode == "RGB" and image.size == (32, 32)


def test_open_image_refuses_other_formats_and_garbage():
    buffer = io.BytesIO()
    solid((0, 0, 0)).save(buffer, "GIF")
    with pytest.raises(ValueError, match="image is not a readable PNG, JPEG, WEBP file"):
        open_image(buffer.getvalue())
    with pytest.raises(ValueError, match="not a readable"):
        open_image(b"\\x89PNG but not really")


@pytest.mark.parametrize(("side", "message"), [
    (5000, "image is 5000x5000: at most 16777216 pixels"),  # past our limit
    (20000, "image is too large: at most 16777216 pixels"),  # past Pillow's bomb limit too
])
def test_open_image_refuses_a_bomb_before_decoding_it(side, message):
    # One colour compresses to almost nothing but would take side² bytes once decoded.
    buffer = io.BytesIO()
    Image.new("L", (side, side)).save(buffer, "PNG", compress_level=9)
    with pytest.raises(ValueError, match=message):
        open_image(buffer.getvalue())


def test_a_file_over_the_upload_limit_becomes_a_webp_that_fits():
    png = encode_png(noisy(512))
    fitted, fmt = fit_upload(png, max_bytes=len(png) // 4)
    assert fmt == "webp" and len(fitted) <= len(png) // 4
    assert Image.open(io.BytesIO(fitted)).format == "WEBP"


def test_a_file_within_the_upload_limit_is_posted_as_it_is():
    png = encode_png(noisy(64))
    assert fit_upload(png, max_bytes=len(png)) == (png, None)
