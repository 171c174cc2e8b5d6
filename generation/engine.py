"""The engine: one diffusers pipeline kept resident, and the three things it draws.

txt2img for a batch of compatible jobs in one pipeline call, variations by
img2img from a parent image, and a 2× upscale (img2img over the image resized
with Lanczos, which adds the detail a plain resize cannot). Image i of a job
always uses seed + i, with its own CPU generator, so any image can be re-made
exactly and the result does not depend on what else shared the batch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import diffusers
import torch
from PIL import Image

from generation.contract import GenerationRequest, JobKind
from generation.hub import load_error
from generation.job_inputs import JobInputs
from generation.preview import latents_to_previews
from generation.prompt_embeds import parts_of, weighted_embeddings
from generation.registry import ModelLoadError, ModelSpec
from generation.tiny import ensure_tiny_pipeline

# Sampler names of the job contract → diffusers scheduler class and its options.
SCHEDULERS = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "flow_euler": ("FlowMatchEulerDiscreteScheduler", {}),
}


# Samplers whose step i goes from sigmas[i] to sigmas[i + 1] by the model's estimate alone:
# with sigmas[i + 1] = 0 that step lands on the estimated finished image (see _stop_early).
JUMPING_SAMPLERS = ("euler", "euler_a", "flow_euler")


class Cancelled(Exception):
    """The job was cancelled between two denoising steps."""


@dataclass(frozen=True)
class Progress:
    step: int  # steps done so far
    total: int
    latents: torch.Tensor
    pipeline_class: str

    def previews(self) -> list[Image.Image]:
        """Small RGB previews, one per image of the call; [] where none can be made.

        Computed on demand, inside the progress callback: cheap but not free, so
        callers ask only when they will show one.
        """
        return latents_to_previews(self.latents, self.pipeline_class)


ProgressFn = Callable[[Progress], None]
CancelFn = Callable[[], bool]


class Engine:
    def __init__(self, spec: ModelSpec, pipeline: diffusers.DiffusionPipeline):
        self.spec = spec
        self.pipeline = pipeline
        self.device = pipeline.device
        # Every sampler switch starts from the model's own scheduler config,
        # so options of one sampler (karras sigmas) never leak into the next.
        self._scheduler_config = pipeline.scheduler.config
        self._samplers: dict[int, str] = {}  # id(pipeline) → sampler it is set up for

    @classmethod
    def load(cls, spec: ModelSpec, device: str | None = None) -> Engine:
        """Load spec's pipeline: CUDA in the registry's dtype when present, else CPU float32."""
        # 1. choose the device and dtype
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, spec.dtype) if device.startswith("cuda") else torch.float32
        # 2. the built-in tiny-random is built and saved once, then loaded like any model
        if spec.builtin:
            ensure_tiny_pipeline(Path(spec.source))
        # 3. load through from_pretrained and keep it resident
        pipeline = _from_pretrained(spec, dtype)
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        return cls(spec, pipeline)

    @cached_property
    def img2img_pipeline(self) -> diffusers.DiffusionPipeline:
        """The image-to-image pipeline sharing this pipeline's weights (no extra memory)."""
        pipeline = diffusers.AutoPipelineForImage2Image.from_pipe(self.pipeline)
        pipeline.set_progress_bar_config(disable=True)
        return pipeline

    def run(self, request: GenerationRequest, parent: Image.Image | None = None,
            on_progress: ProgressFn | None = None,
            should_cancel: CancelFn | None = None,
            inputs: JobInputs | None = None) -> list[Image.Image]:
        """Draw one job of any kind; returns its images in slot order."""
        return self.run_batch([request], [parent], on_progress, should_cancel,
                              inputs=None if inputs is None else [inputs])[0]

    def run_batch(self, requests: Sequence[GenerationRequest],
                  parents: Sequence[Image.Image | None] | None = None,
                  on_progress: ProgressFn | None = None,
                  should_cancel: CancelFn | None = None,
                  inputs: Sequence[JobInputs] | None = None) -> list[list[Image.Image]]:
        """Draw compatible jobs (one batch key) in one pipeline call; parents[i] is the image
        requests[i] starts from (variations and upscales), None for text-to-image.
        inputs[i]: requests[i]'s other images (mask, references; generation/job_inputs.py),
        read by the pool; tests may pass them directly."""
        if requests and requests[0].parent_image is None:
            return self.txt2img(requests, on_progress, should_cancel)
        return self.img2img(requests, parents or [None] * len(requests), on_progress,
                            should_cancel)

    def txt2img(self, requests: Sequence[GenerationRequest],
                on_progress: ProgressFn | None = None,
                should_cancel: CancelFn | None = None) -> list[list[Image.Image]]:
        """Draw a batch of compatible text-to-image jobs in one pipeline call."""
        # 1. check the batch shares everything one pipeline call shares
        first = self._check_batch(requests, (JobKind.IMAGINE, JobKind.REROLL))
        # 2. one prompt and one generator per image: image i of a job uses seed + i
        inputs = self._per_image_inputs(self.pipeline, requests, on_progress, should_cancel)
        # 3. sample
        with self._prepared(self.pipeline, first):
            images = self.pipeline(width=first.width, height=first.height, **inputs).images
        # 4. hand each job its own images
        return split_by_sizes(images, [r.num_images for r in requests])

    def img2img(self, requests: Sequence[GenerationRequest],
                parents: Sequence[Image.Image | None],
                on_progress: ProgressFn | None = None,
                should_cancel: CancelFn | None = None) -> list[list[Image.Image]]:
        """Variations (num_images of each parent), image prompts, or 2× upscales, in one
        pipeline call.

        An upscale resizes its image 2× with Lanczos first; img2img then adds the detail a
        plain resize cannot.
        """
        # 1. check the batch and that each job has the parent its request describes
        first = self._check_batch(requests, tuple(JobKind))
        starts = [_start_image(r, p) for r, p in zip(requests, parents, strict=True)]
        # 2. one prompt, start image and generator per image: image i uses seed + i
        inputs = self._per_image_inputs(self.img2img_pipeline, requests, on_progress,
                                        should_cancel)
        images = [start for r, start in zip(requests, starts, strict=True)
                  for _ in range(r.num_images)]
        # 3. sample
        with self._prepared(self.img2img_pipeline, first):
            out = self.img2img_pipeline(image=images, strength=first.strength, **inputs).images
        # 4. hand each job its own images
        return split_by_sizes(out, [r.num_images for r in requests])

    def _per_image_inputs(self, pipeline, requests: Sequence[GenerationRequest],
                          on_progress: ProgressFn | None, should_cancel: CancelFn | None) -> dict:
        """The pipeline arguments both kinds of call share: one prompt and one generator per
        image (image i of a job uses seed + i), and the batch's steps and guidance."""
        negatives = [r.negative_prompt for r in requests for _ in range(r.num_images)]
        return {
            **_prompts(pipeline, requests),
            "negative_prompt": negatives if any(negatives) else None,
            "generator": [_generator(seed) for r in requests for seed in r.seeds],
            "num_inference_steps": requests[0].steps, "guidance_scale": requests[0].guidance,
            "callback_on_step_end": self._step_callback(on_progress, should_cancel,
                                                        requests[0]),
        }

    def _check_batch(self, requests: Sequence[GenerationRequest],
                     kinds: tuple[JobKind, ...]) -> GenerationRequest:
        if not requests:
            raise ValueError("requests is empty: pass at least one request")
        first = requests[0]
        if first.model != self.spec.name:
            raise ValueError(f"model is {first.model!r}: this engine runs {self.spec.name!r}")
        if first.kind not in kinds:
            raise ValueError(f"kind is {str(first.kind)!r}: allowed here: {', '.join(kinds)}")
        for i, request in enumerate(requests[1:], start=1):
            if request.batch_key() != first.batch_key():
                raise ValueError(f"requests[{i}] does not match requests[0]: a batch shares model, "
                                 "kind, size, steps, guidance, sampler, tile, strength and stop")
        return first

    @contextlib.contextmanager
    def _prepared(self, pipeline, request: GenerationRequest) -> Iterator[None]:
        self._use_sampler(pipeline, request.sampler)
        with _seamless(pipeline, request.tile):
            yield

    def _use_sampler(self, pipeline, name: str) -> None:
        if self._samplers.get(id(pipeline)) == name:
            return
        class_name, options = SCHEDULERS[name]
        scheduler_class = getattr(diffusers, class_name)
        pipeline.scheduler = scheduler_class.from_config(self._scheduler_config, **options)
        self._samplers[id(pipeline)] = name

    def _step_callback(self, on_progress: ProgressFn | None, should_cancel: CancelFn | None,
                       request: GenerationRequest):
        pipeline_class = self.spec.pipeline
        jumps = request.sampler in JUMPING_SAMPLERS

        def callback(pipeline, step: int, timestep, tensors: dict) -> dict:
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            total = steps_until_stop(pipeline.num_timesteps, request.stop)
            if total < pipeline.num_timesteps:
                _stop_early(pipeline, step, total, jumps)
            if on_progress is not None:
                on_progress(Progress(step + 1, total, tensors["latents"], pipeline_class))
            return {}

        return callback


def _from_pretrained(spec: ModelSpec, dtype: torch.dtype) -> diffusers.DiffusionPipeline:
    pipeline_class = getattr(diffusers, spec.pipeline, None)
    if not isinstance(pipeline_class, type) or not issubclass(pipeline_class,
                                                              diffusers.DiffusionPipeline):
        raise ModelLoadError(f"models.{spec.name}.pipeline is {spec.pipeline!r}: not a diffusers "
                             "pipeline class (e.g. StableDiffusionXLPipeline)")
    try:
        return pipeline_class.from_pretrained(spec.source, dtype=dtype,
                                              local_files_only=spec.builtin)
    except (OSError, ValueError) as error:  # missing files, no network, a bad checkpoint
        raise load_error(spec, error) from error


def steps_until_stop(steps: int, stop: int | None) -> int:
    """Denoising steps that run of `steps` under --stop (a percent), at least 1."""
    return steps if stop is None else max(1, math.ceil(steps * stop / 100))


def _stop_early(pipeline, step: int, total: int, jumps: bool) -> None:
    """--stop: finish after `total` steps (Midjourney's "finish partway": less detail)."""
    # 1. before the last step, where the sampler allows, aim it at sigma 0: it then lands on
    #    the model's estimate of the finished image (soft, unfinished) instead of a noisy
    #    midpoint. The scheduler builds its sigmas anew for every call.
    if jumps and step + 2 == total:
        scheduler = pipeline.scheduler
        scheduler.sigmas[scheduler.step_index + 1] = 0.0
    # 2. after the last step the pipeline skips the rest and decodes the latents as they are
    if step + 1 >= total:
        pipeline._interrupt = True


def _prompts(pipeline, requests: Sequence[GenerationRequest]) -> dict:
    """One prompt per image: its text, or, when a job of the batch has a multi-prompt,
    every image's weighted part embeddings (one pipeline call takes one or the other)."""
    if not any(r.prompt_parts for r in requests):
        return {"prompt": [r.prompt for r in requests for _ in range(r.num_images)]}
    return weighted_embeddings(pipeline, [parts_of(r) for r in requests
                                          for _ in range(r.num_images)])


def _generator(seed: int) -> torch.Generator:
    # CPU generators draw the same noise on every machine, GPU or not.
    return torch.Generator("cpu").manual_seed(seed)


def split_by_sizes(items: list, sizes: list[int]) -> list[list]:
    """items cut into consecutive runs of the given sizes (one run per job of a batch)."""
    out, start = [], 0
    for size in sizes:
        out.append(items[start:start + size])
        start += size
    return out


def _start_image(request: GenerationRequest, parent: Image.Image | None) -> Image.Image:
    if parent is None:
        raise ValueError(f"parent is None: a {request.kind} job needs its parent image")
    if parent.size != (request.width, request.height):
        raise ValueError(f"image size is {parent.width}x{parent.height}: the request says "
                         f"{request.width}x{request.height}")
    parent = parent.convert("RGB")
    if request.kind is JobKind.UPSCALE:
        return parent.resize((2 * parent.width, 2 * parent.height), Image.Resampling.LANCZOS)
    return parent


@contextlib.contextmanager
def _seamless(pipeline, tile: bool) -> Iterator[None]:
    """Circular padding in every convolution makes the image tile seamlessly (--tile)."""
    if not tile:
        yield
        return
    convs = [m for name in ("unet", "vae") if getattr(pipeline, name, None) is not None
             for m in getattr(pipeline, name).modules() if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield
    finally:
        for conv in convs:
            conv.padding_mode = "zeros"
