"""Multi-prompts (`hot dog::2 animal::-0.5`) drawn through prompt embeddings.

Each part is encoded by the pipeline's own `encode_prompt`, and the image is conditioned on
the weighted mean of the parts' embeddings: Σ wᵢ·E(partᵢ) / Σ wᵢ. Midjourney normalizes the
weights the same way (`a::2 b::2` is `a:: b::`), and a negative weight pushes its part away;
the sum must be positive. SDXL and FLUX also return pooled embeddings, mixed with the same
weights. The negative prompt (`--no`) stays text: the pipeline encodes it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from generation.contract import GenerationRequest, PromptPart

# What each pipeline family's encode_prompt returns, in order, named as the pipeline call
# takes it back (None: an output we do not pass, the negative embeddings), and the options
# that make it encode the prompt alone. Matched on the class name's start, most specific first.
_FAMILIES = (
    ("StableDiffusionXL", ("prompt_embeds", None, "pooled_prompt_embeds", None),
     {"do_classifier_free_guidance": False}),
    ("Flux", ("prompt_embeds", "pooled_prompt_embeds", None), {}),
    ("StableDiffusion", ("prompt_embeds", None), {"do_classifier_free_guidance": False}),
)


def parts_of(request: GenerationRequest) -> tuple[PromptPart, ...]:
    """The parts a request draws: its multi-prompt, or its whole prompt at weight 1."""
    return request.prompt_parts or (PromptPart(request.prompt),)


def weighted_embeddings(pipeline, prompts: Sequence[Sequence[PromptPart]]) -> dict:
    """Pipeline arguments (prompt_embeds, and pooled_prompt_embeds where the class has them)
    for one image per entry of prompts, each the weighted mean of its parts' embeddings."""
    # 1. encode every distinct part text once, in one call
    names, options = _family(pipeline)
    texts = sorted({part.text for parts in prompts for part in parts})
    outputs = pipeline.encode_prompt(prompt=texts, device=pipeline.device,
                                     num_images_per_prompt=1, **options)
    encoded = {name: out for name, out in zip(names, outputs, strict=True) if name}
    row = {text: i for i, text in enumerate(texts)}
    # 2. mix each image's parts by weight / total weight
    return {name: torch.stack([_mix(tensor, row, parts) for parts in prompts])
            for name, tensor in encoded.items()}


def _mix(tensor: torch.Tensor, row: dict[str, int], parts: Sequence[PromptPart]) -> torch.Tensor:
    total = sum(part.weight for part in parts)
    return sum(tensor[row[part.text]] * (part.weight / total) for part in parts)


def _family(pipeline) -> tuple[tuple[str | None, ...], dict]:
    class_name = type(pipeline).__name__
    for prefix, names, options in _FAMILIES:
        if class_name.startswith(prefix):
            return names, options
    known = ", ".join(prefix + "*" for prefix, _, _ in _FAMILIES)
    raise ValueError(f"pipeline is {class_name!r}: multi-prompt weights (::) work with {known}")
