"""`dreamloop imagine`: one prompt to a grid and four PNGs, without Discord."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.prompt import build_request, parse_prompt
from dreamloop.settings import Settings
from generation.contract import MAX_IMAGES, MAX_SEED, GenerationRequest
from generation.engine import Engine
from generation.images import encode_grid, encode_png, make_grid
from generation.registry import TINY_RANDOM, load_registry


def imagine(settings: Settings, prompt: str, model: str | None, out: Path, grid_format: str,
            console: Console) -> list[Path]:
    """Draw the prompt (each --repeat) and write grid + full images; returns the grid paths."""
    # 1. parse the prompt into a request: bad input stops here, with a clear message
    registry = load_registry(settings.models_file, settings.data_dir)
    parsed = parse_prompt(prompt)
    request = build_request(parsed, registry, model=model)
    # 2. load the model once
    with console.status(f"loading {request.model}…"):
        engine = Engine.load(registry.get(request.model))
    if request.model == TINY_RANDOM:
        console.print("note: tiny-random has random weights; it renders noise, by design.")
    # 3. draw each repeat and write its files
    written = []
    for index in range(parsed.repeat):
        job = repeat_request(request, index)
        images = _draw_with_progress(engine, job, console)
        written.append(write_job_files(images, repeat_path(out, index), grid_format))
        # The result goes to stdout (scripts read it); progress and notes go to stderr.
        print(f"seed {job.seed}: wrote {written[-1]} and {len(images)} PNGs beside it", flush=True)
    return written


def repeat_request(request: GenerationRequest, index: int) -> GenerationRequest:
    """Repeat k starts its seeds after the images of the repeats before it."""
    return dataclasses.replace(request, seed=(request.seed + MAX_IMAGES * index) % (MAX_SEED + 1))


def repeat_path(out: Path, index: int) -> Path:
    return out if index == 0 else out.with_name(f"{out.stem}-r{index + 1}{out.suffix}")


def write_job_files(images: list[Image.Image], grid_path: Path, grid_format: str) -> Path:
    """The grid at grid_path and image n at <stem>-n.png beside it."""
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    grid_path.write_bytes(encode_grid(make_grid(images), grid_format))
    for slot, image in enumerate(images, start=1):
        grid_path.with_name(f"{grid_path.stem}-{slot}.png").write_bytes(encode_png(image))
    return grid_path


def _draw_with_progress(engine: Engine, request: GenerationRequest,
                        console: Console) -> list[Image.Image]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("steps"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"seed {request.seed}", total=request.steps)
        return engine.run(request, on_progress=lambda p: bar.update(task, completed=p.step,
                                                                    total=p.total))
