"""Image prompts: an image attached to /imagine, or a Discord image link first in the prompt.

The image comes from a stranger, so (REFERENCE.md §7) it is fetched only from Discord's
CDN, redirects are not followed, the size is capped before it is read whole, and it is
decoded with the safe reader (PNG, JPEG or WebP; no decompression bombs). It is stored in
our blob store at the request's size: Discord's links expire, and the worker reads blobs.
"""

from __future__ import annotations

import asyncio
import io
import logging

import aiohttp
import yarl
from PIL import Image, ImageOps

from generation.images import OPEN_FORMATS, open_image

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024  # Discord's default upload limit: no real attachment is larger
DISCORD_CDN = ("https://cdn.discordapp.com", "https://media.discordapp.net")
FETCH_TIMEOUT_S = 15


class ImagePromptError(ValueError):
    """The image prompt cannot be used; the message says why and what is allowed."""


def image_prompt_key(interaction_id: int) -> str:
    return f"prompts/{interaction_id}.png"


async def fetch_image(url: str, origins: tuple[str, ...] = DISCORD_CDN) -> bytes:
    """The image's bytes, from one of the allowed origins only, at most MAX_BYTES."""
    if _origin(url) not in origins:
        raise ImagePromptError(f"The image link {url[:80]!r} is not a Discord attachment: "
                               f"use an image uploaded to Discord ({', '.join(origins)}).")
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout, trace_configs=[_logged()]
                                         ) as session, session.get(
                url, allow_redirects=False) as response:
            _check_response(response)
            return await _read_capped(response)
    except (aiohttp.ClientError, TimeoutError) as error:
        raise ImagePromptError(f"Could not fetch the image ({error or 'timed out'}); "
                               "try uploading it again.") from None


def _logged() -> aiohttp.TraceConfig:
    """Every request the fetch makes is logged with its host: what left the bot, and where
    to, can be read from the log (and is, by the hostile-input tests)."""
    async def started(session, context, params) -> None:
        log.info("outbound request: %s %s://%s", params.method, params.url.scheme,
                 params.url.raw_authority)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    return trace


def _origin(url: str) -> str:
    try:
        parsed = yarl.URL(url)
        return f"{parsed.scheme}://{parsed.raw_authority}"
    except (ValueError, TypeError):
        return ""


def _check_response(response: aiohttp.ClientResponse) -> None:
    if 300 <= response.status < 400:
        raise ImagePromptError("The image link redirects elsewhere; use an image uploaded "
                               "to Discord.")
    if response.status != 200:
        raise ImagePromptError(f"Discord answered {response.status} for the image (links "
                               "expire after a while); upload it again.")
    if (response.content_length or 0) > MAX_BYTES:
        raise ImagePromptError(f"The image is {response.content_length} bytes: at most "
                               f"{MAX_BYTES} are allowed.")


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    # The header may be missing or wrong: count what actually arrives.
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_BYTES:
            raise ImagePromptError(f"The image is over {MAX_BYTES} bytes, the most allowed.")
    return bytes(data)


async def store_image_prompt(blobs, key: str, data: bytes, width: int, height: int,
                             content_type: str | None = None) -> None:
    """Decode safely, crop to the request's aspect, resize to its size, store as PNG.
    content_type: what the attachment says it is (Discord's attachment object)."""
    await asyncio.to_thread(_store, blobs, key, data, width, height, content_type)


def _store(blobs, key: str, data: bytes, width: int, height: int,
           content_type: str | None) -> None:
    try:
        _check_label(data, content_type)
        image = open_image(data)
    except ValueError as error:
        raise ImagePromptError(f"The image cannot be used: {error}.") from None
    fitted = ImageOps.fit(image, (width, height))
    buffer = io.BytesIO()
    fitted.save(buffer, format="PNG", compress_level=1)
    blobs.put(key, buffer.getvalue(), "image/png")


def _check_label(data: bytes, content_type: str | None) -> None:
    """A file labelled as one image type but holding another is refused: the label is what
    Discord shows members, the bytes are what we decode."""
    if not content_type or not content_type.startswith("image/"):
        return
    try:  # Pillow identifies the format from the first bytes, decoding nothing
        actual = Image.open(io.BytesIO(data), formats=OPEN_FORMATS).format
    except (Image.DecompressionBombError, OSError, SyntaxError):
        return  # open_image says what is wrong with it
    if f"image/{actual.lower()}" != content_type.split(";")[0].strip().lower():
        raise ValueError(f"it is labelled {content_type[:40]} but holds a {actual} file; "
                         "upload the file as it is (PNG, JPEG or WebP)")
