"""`dreamloop imagine`: one prompt to a grid and four PNGs, through the real queue and pool.

It runs in-process on keys of its own (`<prefix>cli:`), so it neither takes the
community's jobs nor leaves results for the bot.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.prompt import build_request, parse_prompt
from dreamloop import services
from dreamloop.settings import Settings
from generation.contract import GenerationRequest, GenerationResult, repeat_request
from generation.engine import Engine
from generation.images import encode_grid, encode_png, make_grid
from generation.keys import Keys
from generation.pool import SamplingPool
from generation.queue import JobQueue
from generation.redis_connection import connect_redis
from generation.registry import TINY_RANDOM, load_registry


class JobFailed(Exception):
    """The job ended without images (failed, dead or cancelled); the message says why."""


def imagine(settings: Settings, prompt: str, model: str | None, out: Path, grid_format: str,
            console: Console) -> list[Path]:
    """Draw the prompt (each --repeat) and write grid + full images; returns the grid paths."""
    # 1. parse the prompt into requests: bad input stops here, with a clear message
    registry = load_registry(settings.models_file, settings.data_dir)
    parsed = parse_prompt(prompt)
    first = build_request(parsed, registry, model=model)
    requests = [repeat_request(first, index) for index in range(parsed.repeat)]
    # 2. load the model once
    with console.status(f"loading {first.model}…"):
        engine = Engine.load(registry.get(first.model))
    if first.model == TINY_RANDOM:
        console.print("note: tiny-random has random weights; it renders noise, by design.")
    # 3. run the jobs through the queue and pool, then write each one's files
    results = asyncio.run(_through_the_pool(settings, engine, requests, console))
    blobs = services.blob_store(settings)
    written = []
    for index, (request, result) in enumerate(zip(requests, results, strict=True)):
        images = [Image.open(io.BytesIO(blobs.get(i.key))) for i in result.images]
        written.append(write_job_files(images, repeat_path(out, index), grid_format))
        # The result goes to stdout (scripts read it); progress and notes go to stderr.
        print(f"seed {request.seed}: wrote {written[-1]} and {len(images)} PNGs beside it",
              flush=True)
    return written


def repeat_path(out: Path, index: int) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}-r{index + 1}{out.suffix}")


def write_job_files(images: list[Image.Image], grid_path: Path, grid_format: str) -> Path:
    """The grid at grid_path and image n at <stem>-n.png beside it."""
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    grid_path.write_bytes(encode_grid(make_grid(images), grid_format))
    for slot, image in enumerate(images, start=1):
        grid_path.with_name(f"{grid_path.stem}-{slot}.png").write_bytes(encode_png(image))
    return grid_path


async def _through_the_pool(settings: Settings, engine: Engine,
                            requests: list[GenerationRequest],
                            console: Console) -> list[GenerationResult]:
    keys = Keys(settings.redis_prefix + "cli:")
    queue = JobQueue(connect_redis(services.redis_url(settings)), keys,
                     lease_ms=settings.lease_ms, max_deliveries=settings.max_deliveries)
    pool = SamplingPool({engine.spec.name: engine}, queue, services.blob_store(settings),
                        f"imagine-{os.getpid()}", services.pool_settings(settings, ("fast",)))
    job_ids = [f"cli-{uuid.uuid4().hex[:12]}" for _ in requests]
    stop = asyncio.Event()
    running = asyncio.create_task(pool.run(stop))
    try:
        with _progress_bar(console) as bar:
            watching = asyncio.create_task(_show_progress(queue, job_ids, requests, bar))
            for job_id, request in zip(job_ids, requests, strict=True):
                await queue.enqueue(job_id, request)
            outcomes = await _wait_for_outcomes(queue, job_ids)
            watching.cancel()
    finally:
        stop.set()
        await running
        await queue.redis.aclose()
    return [_result_of(outcomes[job_id]) for job_id in job_ids]


def _progress_bar(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("steps"), TimeElapsedColumn())
    return Progress(*columns, console=console)


async def _show_progress(queue: JobQueue, job_ids: list[str], requests, bar: Progress) -> None:
    tasks = {job_id: bar.add_task(f"seed {r.seed}", total=r.steps)
             for job_id, r in zip(job_ids, requests, strict=True)}
    async with queue.redis.pubsub() as pubsub:
        await pubsub.subscribe(*(queue.keys.progress(job_id) for job_id in job_ids))
        async for message in pubsub.listen():
            if message["type"] == "message":
                event = json.loads(message["data"])
                job_id = message["channel"].rsplit(":", 1)[-1]
                bar.update(tasks[job_id], completed=event["step"], total=event["total"])


async def _wait_for_outcomes(queue: JobQueue, job_ids: list[str]) -> dict[str, dict]:
    """Read the results stream until every job has an outcome (deleting what we read)."""
    outcomes: dict[str, dict] = {}
    last = "0-0"
    while len(outcomes) < len(job_ids):
        reply = await queue.redis.xread({queue.keys.results: last}, block=1000)
        for _, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                if fields["job"] in job_ids:
                    outcomes[fields["job"]] = fields
                    await queue.redis.xdel(queue.keys.results, entry_id)
    return outcomes


def _result_of(outcome: dict) -> GenerationResult:
    if outcome["status"] != "succeeded":
        raise JobFailed(f"the job {outcome['status']}: {outcome.get('error', '')}")
    return GenerationResult.from_json(outcome["result"])
