"""`dreamloop bench bot`: how soon the real bot answers members, against the Discord double.

The double runs in this process; the bot is its own process (`dreamloop bot`, unmodified,
pointed at the double); there is no worker (dreamloop/bench_stack.py). In one run, each
time measured by the double:
- acknowledgement: /imagine from 1 and from N members at the same moment, several rounds
  after one that warms up: from sending INTERACTION_CREATE to receiving the bot's callback,
  and to storing its status channel message ("queued (#n)", or "waiting …" for its turn);
- baseline: the same rounds answered by a bare gateway client on this event loop that
  defers each interaction as it arrives; and the grid uploaded by a bare HTTP client;
- delivery: a succeeded result added to the results stream as a worker's completion adds
  it, one at a time: from that XADD to storing the grid message, so including the grid's
  upload over loopback.
Nothing touches real data: the servers are throwaway ones (dreamloop/throwaway.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import numpy as np
from PIL import Image

from discord_double import DiscordDouble, Interaction, Message
from dreamloop.bench_stack import (
    BenchFailed,
    Stack,
    connected,
    open_stack,
    run_dreamloop,
    running_bot,
    until,
)
from dreamloop.settings import Settings
from generation.blobs import LocalBlobStore, grid_key, image_key
from generation.contract import GenerationResult, ResultImage
from generation.images import encode_grid, encode_png, make_grid

__all__ = ["BenchFailed", "Sizes", "bench_bot"]

CHANNEL = "general"
IMAGE_SIDE = 512  # each of the four images; the grid is twice that a side
ACK_GOAL_P99_MS, DELIVERY_GOAL_P50_MS = 250, 100

Sent = list[tuple[str, Interaction]]  # (prompt, interaction) of one burst


@dataclass(frozen=True)
class Sizes:
    members: int  # members firing /imagine at once in the crowded case (1 is measured too)
    rounds: int  # measured rounds per case
    results: int  # results delivered, one at a time


async def bench_bot(settings: Settings, sizes: Sizes, report: Callable[[str], None]) -> dict:
    with tempfile.TemporaryDirectory(prefix="dreamloop-bench-bot-") as folder:
        async with open_stack(settings, Path(folder), _members(sizes.members)) as stack:
            figures = await _measure(stack, sizes, report)
    return _context(settings, sizes) | figures


async def _measure(stack: Stack, sizes: Sizes, report: Callable[[str], None]) -> dict:
    grid, png = _sample_files()
    report("migrating the bench's schema, syncing the commands…")
    await run_dreamloop(stack.env, "migrate")
    await run_dreamloop(stack.env, "sync-commands", "--guild", str(stack.double.guild_id))
    figures = await _baseline(stack, sizes, grid, report)
    report("starting the bot (`dreamloop bot`)…")
    async with running_bot(stack):
        figures |= await _acknowledgements(stack, sizes, report)
        report(f"delivery: {sizes.results} result(s), one at a time…")
        delivered = await _deliveries(stack, sizes, grid, png)
    figures |= _latency("deliver", "", delivered) | {"grid_bytes": len(grid)}
    return figures | _ratios(figures, sizes)


def _ratios(figures: dict, sizes: Sizes) -> dict:
    """The bot against the bare clients, measured in the same run."""
    ratios = {f"ack_vs_bare_p50_{n}": round(figures[f"ack_ms_p50_{n}"]
                                            / figures[f"bare_ack_ms_p50_{n}"], 2)
              for n in _counts(sizes)}
    ratios["deliver_minus_bare_upload_ms_p50"] = round(
        figures["deliver_ms_p50"] - figures["bare_upload_ms_p50"], 1)
    return ratios


def _context(settings: Settings, sizes: Sizes) -> dict:
    return {"members": sizes.members, "rounds": sizes.rounds, "results": sizes.results,
            "database": "a schema on DREAMLOOP_DATABASE_URL" if settings.database_url
            else "embedded, temporary", "redis": "DREAMLOOP_REDIS_URL" if settings.redis_url
            else "embedded, temporary", "bot_db_pool_size": settings.database_pool_size,
            "cpus": os.cpu_count(), "grid_px": f"{2 * IMAGE_SIDE}x{2 * IMAGE_SIDE}",
            "deliver_includes": "the grid's upload to the in-process double over loopback",
            "ack_goal_ms_p99": ACK_GOAL_P99_MS, "deliver_goal_ms_p50": DELIVERY_GOAL_P50_MS}


# -- acknowledgement -------------------------------------------------------------------------

async def _acknowledgements(stack: Stack, sizes: Sizes, report: Callable[[str], None]) -> dict:
    figures: dict = {}
    for n in _counts(sizes):
        report(f"bot: {n} member(s) at once, {sizes.rounds} round(s)…")
        rounds = [await _bot_round(stack, _members(n), f"bot {n} r{number}")
                  for number in range(sizes.rounds + 1)]
        pairs = _after_warm_up(rounds)
        figures |= (_latency("ack", f"_{n}", [ack for ack, _ in pairs])
                    | _latency("queued", f"_{n}", [queued for _, queued in pairs]))
    return figures


async def _bot_round(stack: Stack, members: list[str], tag: str) -> list[tuple[float, float]]:
    """/imagine from each of members at once: (ms to the callback, ms to "queued") each."""
    sent = await _fire(stack.double, members, tag)
    stack.imagined += len(sent)
    await _answered(stack.double, sent)
    found = await _found(stack.double, [p for p, _ in sent], _is_status, "status message")
    await _settled(stack)
    return [(i.acknowledged_after * 1000, (_seen_at(found[p]) - i.created_at) * 1000)
            for p, i in sent]


def _is_status(message: Message) -> bool:
    """A job's first status message: "queued (#n)" once dispatched, else "waiting …" (with no
    worker the dispatcher keeps one job per stream ahead; the rest wait in PostgreSQL)."""
    return any(f" — {where}" in message.content for where in ("queued (#", "waiting"))


async def _fire(double: DiscordDouble, members: list[str], tag: str) -> Sent:
    """/imagine from each member at the same moment, each with a prompt of its own."""
    prompts = [f"{tag} n{i}" for i in range(len(members))]
    interactions = await asyncio.gather(*(
        double.slash(member, CHANNEL, "imagine", prompt=prompt)
        for member, prompt in zip(members, prompts, strict=True)))
    return list(zip(prompts, interactions, strict=True))


async def _answered(double: DiscordDouble, sent: Sent) -> None:
    await until(lambda: all(i.callbacks or i.errors for _, i in sent),
                "answer to every interaction")
    refused = [f"{p!r}: {i.errors[0].message}" for p, i in sent if not i.callbacks]
    if refused:
        raise BenchFailed(f"the double refused {len(refused)} answer(s), e.g. {refused[0]}")


async def _settled(stack: Stack) -> None:
    """Until the bot's last step for each /imagine (its ephemeral "Queued as job …") is in."""
    def replies() -> list[str]:
        return [m.content for m in stack.double.messages.values()
                if m.payload.get("_viewer") and m.content]

    await until(lambda: len(replies()) >= stack.imagined, "reply to each /imagine")
    refusals = [r for r in replies() if not r.startswith("Queued as job")]
    if refusals:
        raise BenchFailed(f"the bot refused a job: {refusals[0]}")


# -- the baseline ----------------------------------------------------------------------------

async def _baseline(stack: Stack, sizes: Sizes, grid: bytes,
                    report: Callable[[str], None]) -> dict:
    figures: dict = {}
    async with _bare_client(stack.double):
        for n in _counts(sizes):
            report(f"baseline: {n} member(s) at once, answered by a bare client…")
            rounds = [await _bare_round(stack.double, _members(n), f"bare {n} r{number}")
                      for number in range(sizes.rounds + 1)]
            figures |= _latency("bare_ack", f"_{n}", _after_warm_up(rounds))
    report("baseline: the grid uploaded by a bare HTTP client…")
    uploads = await _bare_uploads(stack.double, grid, sizes.results)
    return figures | _latency("bare_upload", "", uploads)


async def _bare_round(double: DiscordDouble, members: list[str], tag: str) -> list[float]:
    sent = await _fire(double, members, tag)
    await _answered(double, sent)
    return [i.acknowledged_after * 1000 for _, i in sent]


@contextlib.asynccontextmanager
async def _bare_client(double: DiscordDouble) -> AsyncIterator[None]:
    """The least any bot does: read the gateway, defer each interaction as it arrives."""
    async with aiohttp.ClientSession() as http, http.ws_connect(double.gateway_url) as ws:
        await ws.receive()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": double.token, "properties": {}}})
        reading = asyncio.create_task(_defer_each(http, ws, double.api_base))
        await double.wait_until_connected()
        yield
        reading.cancel()
    await until(lambda: not connected(double), "disconnection of the bare client")


async def _defer_each(http: aiohttp.ClientSession, ws, api_base: str) -> None:
    answering: set[asyncio.Task] = set()
    async for message in ws:
        event = json.loads(message.data)
        if event.get("t") == "INTERACTION_CREATE":
            task = asyncio.create_task(_defer(http, api_base, event["d"]))
            answering.add(task)
            task.add_done_callback(answering.discard)


async def _defer(http: aiohttp.ClientSession, api_base: str, interaction: dict) -> None:
    url = f"{api_base}/interactions/{interaction['id']}/{interaction['token']}/callback"
    async with http.post(url, json={"type": 5, "data": {"flags": 64}}) as response:
        await response.read()


async def _bare_uploads(double: DiscordDouble, grid: bytes, count: int) -> list[float]:
    """ms to post the grid as a channel message, multipart as discord.py sends it."""
    url = f"{double.api_base}/channels/{double.channel_id('art')}/messages"
    times = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {double.token}"}) as http:
        for _ in range(count + 1):  # the first warms up
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps({"content": "bare upload"}),
                           content_type="application/json")
            form.add_field("files[0]", grid, filename="grid.webp", content_type="image/webp")
            started = time.perf_counter()
            async with http.post(url, data=form) as response:
                await response.read()
            times.append((time.perf_counter() - started) * 1000)
    return times[1:]


# -- delivery --------------------------------------------------------------------------------

async def _deliveries(stack: Stack, sizes: Sizes, grid: bytes, png: bytes) -> list[float]:
    """Jobs made by /imagine, then their results delivered one at a time: ms each."""
    crowd = _members(sizes.members)
    await _bot_round(stack, [crowd[i % len(crowd)] for i in range(sizes.results)], "deliver")
    jobs = await _jobs(stack.db, [f"deliver n{i}" for i in range(sizes.results)])
    return [await _deliver(stack, job_id, seed, prompt, grid, png)
            for prompt, (job_id, seed) in jobs.items()]


async def _jobs(db: asyncpg.Connection, prompts: list[str]) -> dict[str, tuple[int, int]]:
    """prompt → (job id, seed) of the jobs those prompts made."""
    rows = await db.fetch("SELECT id, request->>'prompt' AS prompt, "
                          "(request->>'seed')::bigint AS seed FROM jobs "
                          "WHERE request->>'prompt' = ANY($1::text[])", prompts)
    if len(rows) != len(prompts):
        raise BenchFailed(f"{len(prompts)} /imagine made {len(rows)} job(s)")
    return {row["prompt"]: (row["id"], row["seed"]) for row in rows}


async def _deliver(stack: Stack, job_id: int, seed: int, prompt: str, grid: bytes,
                   png: bytes) -> float:
    """A worker's completion of the job, then ms until the double has its grid message."""
    result = _store(stack.blobs, job_id, seed, grid, png)
    started = stack.double.clock.now()
    # The fields of generation/queue.py's completion script (its XADD to the results).
    await stack.redis.xadd(stack.keys.results, {"job": str(job_id), "status": "succeeded",
                                                "result": result.to_json()})
    found = await _found(stack.double, [prompt], lambda m: bool(m.files), "grid message")
    return (_seen_at(found[prompt]) - started) * 1000


def _store(blobs: LocalBlobStore, job_id: int, seed: int, grid: bytes,
           png: bytes) -> GenerationResult:
    """The job's four images and grid in the blob store, as a sampling pool leaves them."""
    images = []
    for slot in range(1, 5):
        blobs.put(image_key(job_id, slot), png, "image/png")
        images.append(ResultImage(slot=slot, seed=seed + slot - 1, key=image_key(job_id, slot),
                                  width=IMAGE_SIDE, height=IMAGE_SIDE,
                                  sha256=hashlib.sha256(png).hexdigest()))
    blobs.put(grid_key(job_id), grid, "image/webp")
    return GenerationResult(job_id=str(job_id), images=tuple(images), gpu_ms=1000,
                            encode_ms=50, batch_size=1)


def _sample_files() -> tuple[bytes, bytes]:
    """A WebP grid and a PNG of a photo-like size: smooth colour fields with a little grain
    (noise would be far larger than a real image, a flat colour far smaller)."""
    rng = np.random.default_rng(7)
    images = []
    for _ in range(4):
        field = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(
            (IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC)
        grain = rng.normal(0, 8, (IMAGE_SIDE, IMAGE_SIDE, 3))
        images.append(Image.fromarray(np.clip(np.asarray(field) + grain, 0, 255)
                                      .astype(np.uint8)))
    return encode_grid(make_grid(images), "webp"), encode_png(images[0])


# -- small helpers -----------------------------------------------------------------------------

def _members(count: int) -> list[str]:
    return [f"m{i:03d}" for i in range(count)]


def _counts(sizes: Sizes) -> list[int]:
    return sorted({1, sizes.members})


def _after_warm_up(rounds: list[list]) -> list:
    """The values of every round but the first, which warmed up."""
    return [value for values in rounds[1:] for value in values]


async def _found(double: DiscordDouble, prompts: list[str],
                 predicate: Callable[[Message], bool], what: str) -> dict[str, Message]:
    """prompt → the channel message for it that satisfies predicate, once all are there."""
    found: dict[str, Message] = {}

    def all_there() -> bool:
        for message in double.channel_messages(CHANNEL):
            if message.content.startswith("**") and predicate(message):
                found[message.content[2:].split("**", 1)[0]] = message
        return all(p in found for p in prompts)

    await until(all_there, f"{what} for each prompt")
    return found


def _seen_at(message: Message) -> float:
    """When the double stored the message (its timestamp, on the double's clock)."""
    return datetime.fromisoformat(message.payload["timestamp"]).timestamp()


def _latency(name: str, suffix: str, values_ms: list[float]) -> dict:
    return {f"{name}_ms_p50{suffix}": _percentile(values_ms, 50),
            f"{name}_ms_p99{suffix}": _percentile(values_ms, 99)}


def _percentile(values: list[float], percent: int) -> float:
    """Nearest rank: a value that was measured, never one interpolated between two."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)], 1)
