"""The built-in `tiny-random` pipeline: random weights, made in code, saved once.

No model hub is needed: the tokenizer is a byte-level CLIP vocabulary with no
merges (REFERENCE.md §6), the components have the sizes diffusers' own tests
use. It renders noise; it exists so tests and smoke runs exercise the real
`from_pretrained` loading path on any machine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

WEIGHTS_SEED = 0  # fixed, so every machine builds the same tiny-random


def ensure_tiny_pipeline(folder: Path) -> Path:
    """Build and save the pipeline under folder unless it is already there."""
    if (folder / "model_index.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a crash or a second process never
    # leaves a half-written pipeline where from_pretrained would find it.
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        staged = Path(scratch) / "pipeline"
        build_tiny_pipeline(Path(scratch) / "tokenizer").save_pretrained(staged)
        try:
            staged.rename(folder)
        except OSError:  # another process got there first
            if not (folder / "model_index.json").exists():
                raise
    return folder


def build_tiny_pipeline(tokenizer_dir: Path) -> StableDiffusionPipeline:
    tokenizer = _byte_level_tokenizer(tokenizer_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHTS_SEED)
        return StableDiffusionPipeline(
            unet=_unet(), vae=_vae(), text_encoder=_text_encoder(len(tokenizer)),
            tokenizer=tokenizer, scheduler=_scheduler(), safety_checker=None,
            feature_extractor=None, requires_safety_checker=False,
        )


def _byte_level_tokenizer(folder: Path) -> CLIPTokenizer:
    # 256 byte symbols, the same with the end-of-word mark, and the two specials:
    # every prompt tokenizes to distinct ids without any learned merges.
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    # Without model_max_length the pipeline overflows converting an unbounded length.
    return CLIPTokenizer.from_pretrained(folder, model_max_length=77)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    mapping = {b: chr(b) for b in printable}
    mapping.update({b: chr(256 + n) for n, b in enumerate(others)})
    return dict(sorted(mapping.items()))


def _unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4,
        out_channels=4, cross_attention_dim=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )


def _text_encoder(vocab_size: int) -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1,
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=5,
        layer_norm_eps=1e-5, vocab_size=vocab_size,
    ))


def _scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                  beta_schedule="scaled_linear", steps_offset=1)

