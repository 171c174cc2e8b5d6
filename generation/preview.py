"""Cheap progress previews: latents projected straight to RGB, no VAE decode.

A linear map from the 4 latent channels to RGB costs nothing next to a
denoising step (a VAE decode costs about as much as several steps), and is
good enough for the blurry "(NN%)" preview members watch while they wait.
The factors are the commonly used least-squares fits for each latent space.
"""

from __future__ import annotations

import torch
from PIL import Image

# rows: latent channel; columns: R, G, B
_SD15_FACTORS = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350],
                 [-0.2829, 0.1762, 0.2721], [-0.2120, -0.2616, -0.7177]]
_SD15_BIAS = [0.0, 0.0, 0.0]
_SDXL_FACTORS = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068],
                 [0.1076, 0.1111, -0.0362], [-0.3165, -0.2492, -0.2188]]
_SDXL_BIAS = [0.1084, -0.0175, -0.0011]


def latents_to_previews(latents: torch.Tensor, pipeline_class: str) -> list[Image.Image]:
    """One small RGB image per latent in the batch; [] for latent layouts we cannot project."""
    if latents.ndim != 4 or latents.shape[1] != 4:
        return []  # e.g. FLUX packs 16-channel latents into sequences
    xl = "XL" in pipeline_class
    factors = torch.tensor(_SDXL_FACTORS if xl else _SD15_FACTORS)
    bias = torch.tensor(_SDXL_BIAS if xl else _SD15_BIAS)
    rgb = torch.einsum("bchw,cr->bhwr", latents.detach().float().cpu(), factors) + bias
    pixels = ((rgb + 1) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
    return [Image.fromarray(image) for image in pixels]
