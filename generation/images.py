"""Image files: the 2×2 grid members see, and the full images we keep.

The grid is what Discord shows, so it is small and quick to encode (WebP or
JPEG under the channel's upload limit). The full images are the record the
dataset is built from, so they are lossless PNG, at a fast compression level:
default PNG compression can cost 15-35% of a job's GPU time (REFERENCE.md §5).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

DISCORD_UPLOAD_LIMIT = 10 * 1024 * 1024  # bytes; interactions report the channel's real limit
GRID_COLUMNS = 2
PNG_COMPRESS_LEVEL = 1
EMPTY_SLOT = (32, 32, 32)
PAIR_HEIGHT = 512  # /rate's two images, each scaled to this height
PAIR_GAP = 16
# Tried in order until the grid fits the byte budget; then the grid is shrunk.
QUALITY_LADDER = (80, 65, 50)
SHRINK_FACTOR = 0.75
GRID_FORMATS = {"webp": "WEBP", "jpeg": "JPEG", "jpg": "JPEG", "png": "PNG"}
# Far below Pillow's ~89.5 MP default: no image we make or accept is larger (REFERENCE.md §7).
MAX_PIXELS = 4096 * 4096
OPEN_FORMATS = ["PNG", "JPEG", "WEBP"]
# Only an animation's first frame is used; more frames than this are refused outright.
MAX_FRAMES = 100


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Images left to right, top to bottom, two to a row (slot 1 top left)."""
    if not 1 <= len(images) <= 4:
        raise ValueError(f"images has {len(images)} items: a grid holds 1 to 4")
    size = images[0].size
    if any(image.size != size for image in images):
        raise ValueError(f"image sizes are {[i.size for i in images]}: a grid needs one size")
    columns = min(GRID_COLUMNS, len(images))
    rows = -(-len(images) // columns)
    grid = Image.new("RGB", (columns * size[0], rows * size[1]), EMPTY_SLOT)
    for slot, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((slot % columns) * size[0], (slot // columns) * size[1]))
    return grid


def make_pair(left: Image.Image, right: Image.Image, height: int = PAIR_HEIGHT) -> Image.Image:
    """Two images side by side at one height, a gap between them, marked A (left) and B
    (right) in their top corners: /rate's picture."""
    if height < 64:
        raise ValueError(f"height is {height}: at least 64 pixels")
    scaled = [image.convert("RGB").resize((max(1, round(image.width * height / image.height)),
                                           height), Image.Resampling.LANCZOS)
              for image in (left, right)]
    pair = Image.new("RGB", (scaled[0].width + PAIR_GAP + scaled[1].width, height), EMPTY_SLOT)
    draw, font = ImageDraw.Draw(pair), ImageFont.load_default(size=height // 12)
    for x, image, letter in ((0, scaled[0], "A"), (scaled[0].width + PAIR_GAP, scaled[1], "B")):
        pair.paste(image, (x, 0))
        box = draw.textbbox((x + 8, 4), letter, font=font)
        draw.rectangle((box[0] - 6, box[1] - 4, box[2] + 6, box[3] + 4), fill=EMPTY_SLOT)
        draw.text((x + 8, 4), letter, font=font, fill=(255, 255, 255))
    return pair


def encode_grid(grid: Image.Image, fmt: str = "webp",
                max_bytes: int = DISCORD_UPLOAD_LIMIT) -> bytes:
    """The grid as fmt in at most max_bytes: lower quality first, then smaller."""
    if fmt not in GRID_FORMATS:
        raise ValueError(f"fmt is {fmt!r}: allowed: {', '.join(GRID_FORMATS)}")
    image = grid
    while min(image.size) >= 16:
        # PNG is lossless: it has no quality to lower, so one try per size.
        for quality in QUALITY_LADDER if fmt != "png" else QUALITY_LADDER[:1]:
            data = _encode(image, GRID_FORMATS[fmt], quality)
            if len(data) <= max_bytes:
                return data
        image = image.resize((int(image.width * SHRINK_FACTOR), int(image.height * SHRINK_FACTOR)),
                             Image.Resampling.LANCZOS)
    raise ValueError(f"max_bytes is {max_bytes}: too small for any readable {fmt} grid")


def fit_upload(data: bytes, max_bytes: int = DISCORD_UPLOAD_LIMIT) -> tuple[bytes, str | None]:
    """An image file for a channel whose uploads may be max_bytes: (data, None) when it fits,
    else (the image as a WebP in at most max_bytes, "webp"): lower quality first, then
    smaller. Discord refuses a larger file (413, code 40005), and a full-size PNG of a
    large upscale can pass its 10 MiB default."""
    if len(data) <= max_bytes:
        return data, None
    return encode_grid(open_image(data), "webp", max_bytes), "webp"


def _encode(image: Image.Image, pillow_format: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    if pillow_format == "WEBP":
        # method 0 is WebP's fastest: ~8x quicker than the default for a little more size.
        image.save(buffer, "WEBP", quality=quality, method=0)
    elif pillow_format == "JPEG":
        image.save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def encode_png(image: Image.Image) -> bytes:
    """A full-size image, lossless, at a fast compression level."""
    return _encode(image, "PNG", 0)


def open_image(data: bytes) -> Image.Image:
    """Decode PNG, JPEG or WebP bytes into RGB, refusing oversized (bomb) images.

    The size is checked from the header, before any pixel is decoded; animated files
    give their first frame.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
        except Image.UnidentifiedImageError:
            # Pillow's own message names a Python object (<_io.BytesIO object at 0x…>).
            raise ValueError(f"image is not a readable {', '.join(OPEN_FORMATS)} file"
                             ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(f"image is too large: at most {MAX_PIXELS} pixels") from None
        if image.width * image.height > MAX_PIXELS:
            raise ValueError(f"image is {image.width}x{image.height}: at most {MAX_PIXELS} "
                             "pixels")
        if getattr(image, "n_frames", 1) > MAX_FRAMES:
            raise ValueError(f"image is animated with {image.n_frames} frames: at most "
                             f"{MAX_FRAMES}")
        try:
            image.load()
        except (OSError, SyntaxError):  # a file cut short or damaged after a good header
            raise ValueError(f"image is a damaged or incomplete {image.format} file"
                             ) from None
    return image.convert("RGB")
