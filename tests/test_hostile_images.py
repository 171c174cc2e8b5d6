"""Hostile image prompts: decompression bombs, truncated, mislabelled and animated files,
files over the size cap (with a truthful Content-Length, a lying one, and chunked with
none), links off Discord's CDN, and CDN links that redirect to internal addresses.

Each is refused with a sentence for a person, creating nothing; the bot keeps serving.
Every connection is counted: an "internal" server whose hits must stay 0, a hostile CDN
server (allowed, like Discord's) that records each request, and the bot's own log of
every request its image fetch made, whose hosts must all be on the allow-list."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import pytest
from aiohttp import web
from PIL import Image

from bot.image_prompt import DISCORD_CDN, MAX_BYTES, ImagePromptError, fetch_image
from generation.images import MAX_FRAMES, MAX_PIXELS
from tests.bot_stack import is_grid, reply_to

pytestmark = pytest.mark.timeout(400)
CANNOT = "The image cannot be used: "
UNREADABLE = CANNOT + "image is not a readable PNG, JPEG, WEBP file."


def encoded(fmt: str, size: tuple[int, int] = (64, 64), **options) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 20)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width × height (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b""))


def animated(frames: int) -> bytes:
    images = [Image.new("RGB", (64, 64), (i % 256, 0, 0)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PNG", save_all=True, append_images=images[1:], duration=10)
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect/></svg>'
# (file name, bytes, content type Discord reports, what the member is told)
ATTACHMENTS = [
    ("bomb.png", png_declaring(100_000, 100_000), "image/png",
     f"{CANNOT}image is too large: at most {MAX_PIXELS} pixels."),
    ("big.png", png_declaring(5000, 5000), "image/png",
     f"{CANNOT}image is 5000x5000: at most {MAX_PIXELS} pixels."),
    ("cut.png", encoded("PNG")[:-40], "image/png",
     f"{CANNOT}image is a damaged or incomplete PNG file."),
    ("half.png", encoded("PNG")[:30], "image/png", UNREADABLE),
    ("fox.png", encoded("GIF"), "image/png", UNREADABLE),
    ("fox.png", encoded("BMP"), "image/png", UNREADABLE),
    ("fox.png", encoded("TIFF"), "image/png", UNREADABLE),
    ("fox.png", SVG, "image/png", UNREADABLE),
    ("fox.gif", encoded("GIF"), "image/gif", UNREADABLE),
    ("fox.png", encoded("JPEG"), "image/png",
     f"{CANNOT}it is labelled image/png but holds a JPEG file; upload the file as it is "
     "(PNG, JPEG or WebP)."),
    ("flicker.png", animated(3000), "image/png",
     f"{CANNOT}image is animated with 3000 frames: at most {MAX_FRAMES}."),
    ("huge.png", b"\x89PNG" + bytes(MAX_BYTES + 1), "image/png",
     f"The image is {MAX_BYTES + 5} bytes: at most {MAX_BYTES} are allowed."),
]


class Recorder:
    """A loopback HTTP server that records every request it gets (and answers each with a
    small PNG, unless a subclass routes it)."""

    def __init__(self):
        self.requests: list[str] = []
        app = web.Application(middlewares=[self._record])
        app.router.add_routes(self.routes())
        self.runner, self.port = web.AppRunner(app), 0

    def routes(self) -> list:
        return [web.route("*", "/{tail:.*}", self._ok)]

    @web.middleware
    async def _record(self, request, handler):
        self.requests.append(request.path_qs)
        return await handler(request)

    async def _ok(self, request):
        return web.Response(body=encoded("PNG"), content_type="image/png")

    async def start(self) -> Recorder:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class HostileCdn(Recorder):
    """An allowed origin (as Discord's CDN is) that answers the way an attacker would like."""

    def __init__(self):
        self.sent = 0  # body bytes the endless route wrote
        super().__init__()

    def routes(self) -> list:
        return [web.get("/endless.png", self.endless), web.get("/lying.png", self.lying),
                web.get("/redirect", self.redirect)]

    async def endless(self, request):
        """Chunked, no Content-Length: it never ends by itself."""
        response = web.StreamResponse()
        response.content_type = "image/png"
        await response.prepare(request)
        chunk = b"\x89PNG" + bytes(64 * 1024 - 4)
        try:
            while self.sent < 8 * MAX_BYTES:
                await response.write(chunk)
                self.sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the reader hung up: what we want
        return response

    async def lying(self, request):
        """Says 20 MiB before any byte of it."""
        return web.Response(body=b"x" * 100, headers={"Content-Length": str(2 * MAX_BYTES)})

    async def redirect(self, request):
        raise web.HTTPFound(request.query["to"])


@pytest.fixture
async def internal():
    server = await Recorder().start()
    yield server
    await server.runner.cleanup()


@pytest.fixture
async def cdn():
    server = await HostileCdn().start()
    yield server
    await server.runner.cleanup()


@pytest.fixture
def stack_overrides(double, cdn) -> dict[str, str]:
    """The double and the hostile CDN are the allowed origins."""
    return {"DREAMLOOP_DISCORD_CDN_ORIGINS": json.dumps(
        [f"http://127.0.0.1:{double.port}", cdn.origin])}


def links(double, cdn, internal) -> list[tuple[str, str]]:
    """(the link first in the prompt, what the member is told)"""
    inside, off = f"127.0.0.1:{double.port}", "is not a Discord attachment"
    away = "The image link redirects elsewhere"
    return [
        (f"{cdn.origin}/endless.png", f"The image is over {MAX_BYTES} bytes, the most allowed."),
        (f"{cdn.origin}/lying.png", f"The image is {2 * MAX_BYTES} bytes: at most {MAX_BYTES}"),
        (f"{internal.origin}/fox.png", off),
        (f"http://localhost:{internal.port}/fox.png", off),
        (f"http://{inside}@127.0.0.1:{internal.port}/fox.png", off),  # userinfo trick
        (f"http://{inside}.evil.example/fox.png", off),
        (f"https://{inside}/fox.png", off),  # another scheme is another origin
        (f"http://127.0.0.1:{internal.port}#@{inside}/fox.png", off),
        (f"{cdn.origin}/redirect?to={internal.origin}/fox.png", away),
        (f"{cdn.origin}/redirect?to=http://localhost:{internal.port}/fox.png", away),
        (f"{cdn.origin}/redirect?to=http://169.254.169.254/latest/meta-data/", away),
        (f"http://{inside}/redirect?to={internal.origin}/fox.png", away),
    ]


async def job_count(db) -> int:
    async with db.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM jobs")


def outbound_hosts(stack) -> set[str]:
    """Every host the bot's image fetch sent a request to, from the bot's own log."""
    log = (stack.folder / "bot.log").read_text()
    return set(re.findall(r"outbound request: GET https?://(\S+)", log))


async def test_hostile_image_prompts_are_refused_and_reach_no_unlisted_host(
        double, db, stack, cdn, internal):
    for name, data, content_type, told_text in ATTACHMENTS:
        upload = double.upload(name, data, content_type)
        interaction = await double.slash("alice", "general", "imagine", prompt="a fox",
                                         model="tiny-random", image=upload)
        assert await reply_to(double, interaction) == told_text, name
    for link, told_text in links(double, cdn, internal):
        interaction = await double.slash("alice", "general", "imagine",
                                         prompt=f"{link} a fox", model="tiny-random")
        said = await reply_to(double, interaction)
        assert told_text in said and "Traceback" not in said, (link, said)
    assert await job_count(db) == 0 and not list((stack.folder / "blobs").rglob("*.png"))
    # Nothing reached the internal server; the CDN saw only what was asked of it.
    assert internal.requests == []
    assert all(path.startswith(("/endless.png", "/lying.png", "/redirect"))
               for path in cdn.requests)
    assert cdn.sent < 4 * MAX_BYTES  # the endless stream was cut off soon after the cap
    allowed = {f"127.0.0.1:{double.port}", f"127.0.0.1:{cdn.port}"}
    assert outbound_hosts(stack) == allowed
    # The bot still serves: a good image prompt becomes a job and a grid.
    upload = double.upload("good.png", encoded("PNG"), "image/png")
    await double.slash("alice", "general", "imagine", prompt="a good fox", model="tiny-random",
                       image=upload)
    await double.wait_for_message("general", lambda m: is_grid(m) and "good fox" in m.content,
                                  timeout=120)
    assert await job_count(db) == 1


@pytest.mark.parametrize("link", [
    "https://cdn.discordapp.com@evil.example/attachments/1/2/fox.png",
    "https://cdn.discordapp.com.evil.example/attachments/1/2/fox.png",
    "http://cdn.discordapp.com/attachments/1/2/fox.png",  # not https
    "https://cdn.discordapp.com:8443/attachments/1/2/fox.png",
    "https://cdn.dіscordapp.com/attachments/1/2/fox.png",  # a Cyrillic і
    "https://cdn.xn--dscordapp-v9h.com/attachments/1/2/fox.png",  # the same, as punycode
    "https://media.discordapp.net%40evil.example/fox.png",
    "https://cdn.discordapp.com\\@evil.example/fox.png",
    "javascript:alert(1)", "file:///etc/passwd", "not a link at all",
])
async def test_look_alike_links_are_refused_before_any_request(link, caplog):
    caplog.set_level("INFO", logger="bot.image_prompt")
    with pytest.raises(ImagePromptError, match="is not a Discord attachment: use an image "
                                               "uploaded to Discord"):
        await fetch_image(link, DISCORD_CDN)
    assert "outbound request" not in caplog.text
