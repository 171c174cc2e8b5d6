"""The images a job starts from besides noise, read from the blob store by the pool.

A parent (variations, upscales, image prompts, edits), a mask (Vary (Region)), and
reference images (--sref, --oref, /blend). Each is a blob key in the request; a missing
or unreadable one fails its job alone (the pool's _load_inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from generation.contract import GenerationRequest
from generation.images import open_image


@dataclass(frozen=True)
class JobInputs:
    parent: Image.Image | None = None
    mask: Image.Image | None = None
    style: tuple[Image.Image, ...] = ()
    object: Image.Image | None = None


def load_inputs(blobs, request: GenerationRequest) -> JobInputs:
    """Read and decode every image the request names (blocking: run it off the loop)."""
    def read(key: str | None) -> Image.Image | None:
        return None if key is None else open_image(blobs.get(key))

    return JobInputs(parent=read(request.parent_image), mask=read(request.mask_image),
                     style=tuple(read(key) for key in request.style_refs),
                     object=read(request.object_ref))


def needs_inputs(request: GenerationRequest) -> bool:
    return any((request.parent_image, request.mask_image, request.style_refs,
                request.object_ref))
