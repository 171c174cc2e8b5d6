"""Multi-prompt weights on the other pipeline classes of models.toml (SDXL and FLUX), built
tiny in code with random weights (diffusers' own test sizes; no hub): the pooled embeddings
are mixed with the same weights as the token embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    T5Config,
    T5EncoderModel,
)

from generation.contract import PromptPart
from generation.engine import Engine
from generation.registry import ModelSpec
from generation.tiny import _byte_level_tokenizer
from tests.factories import imagine_request

HOT_DOG = (PromptPart("hot dog", 2.0), PromptPart("animal", -0.5))


def spec(name: str, pipeline: str, sampler: str) -> ModelSpec:
    return ModelSpec(name=name, source="(built in the test)", pipeline=pipeline,
                     dtype="float32", base_resolution=64, steps=2, guidance=5.0,
                     sampler=sampler, license="none")


def clip_config(vocab: int) -> CLIPTextConfig:
    return CLIPTextConfig(bos_token_id=vocab - 2, eos_token_id=vocab - 1,
                          pad_token_id=vocab - 1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab,
                          projection_dim=32)


def vae(**options) -> AutoencoderKL:
    return AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                         latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, **options)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return _byte_level_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module")
def sdxl(tokenizer) -> Engine:
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80, cross_attention_dim=64)
    config = clip_config(len(tokenizer))
    pipeline = StableDiffusionXLPipeline(
        vae=vae(), text_encoder=CLIPTextModel(config), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(config), tokenizer_2=tokenizer, unet=unet,
        scheduler=EulerDiscreteScheduler(steps_offset=1))
    pipeline.set_progress_bar_config(disable=True)
    return Engine(spec("sdxl", "StableDiffusionXLPipeline", "euler"), pipeline)


@pytest.fixture(scope="module")
def flux(tokenizer) -> Engine:
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
        axes_dims_rope=(4, 4, 8))
    t5 = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37,
                                 num_layers=2, num_heads=4, pad_token_id=len(tokenizer) - 1))
    pipeline = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae(shift_factor=0.0609,
                                                             scaling_factor=1.5035),
        text_encoder=CLIPTextModel(clip_config(len(tokenizer))), tokenizer=tokenizer,
        text_encoder_2=t5, tokenizer_2=tokenizer, transformer=transformer)
    pipeline.set_progress_bar_config(disable=True)
    return Engine(spec("flux", "FluxPipeline", "flow_euler"), pipeline)


def mixed(tensors: list[torch.Tensor]) -> torch.Tensor:
    hot_dog, animal = tensors
    return ((2 * hot_dog - 0.5 * animal) / 1.5).repeat(4, *[1] * (hot_dog.dim() - 1))


def drawn(pipeline, guidance: float, embeds: torch.Tensor, pooled: torch.Tensor) -> list:
    """A plain diffusers call with the given embeddings, seeds 7 to 10 as the engine uses."""
    return pipeline(prompt_embeds=embeds, pooled_prompt_embeds=pooled, width=64, height=64,
                    num_inference_steps=2, guidance_scale=guidance,
                    generator=[torch.Generator().manual_seed(7 + i) for i in range(4)]).images


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


def test_sdxl_mixes_token_and_pooled_embeddings_by_weight(sdxl):
    pipeline = sdxl.pipeline
    request = imagine_request(model="sdxl", prompt="hot dog::2 animal::-0.5", steps=2,
                              guidance=5.0, prompt_parts=HOT_DOG)
    ours = sdxl.run(request)
    encoded = [pipeline.encode_prompt(text, device="cpu", do_classifier_free_guidance=False)
               for text in ("hot dog", "animal")]
    expected = drawn(pipeline, 5.0, mixed([e[0] for e in encoded]),
                     mixed([e[2] for e in encoded]))
    assert np.abs(pixels(ours) - pixels(expected)).max() <= 2


def test_flux_mixes_token_and_pooled_embeddings_by_weight(flux):
    pipeline = flux.pipeline
    request = imagine_request(model="flux", prompt="hot dog::2 animal::-0.5", steps=2,
                              guidance=0.0, sampler="flow_euler", prompt_parts=HOT_DOG)
    ours = flux.run(request)
    encoded = [pipeline.encode_prompt(text, None, device="cpu") for text in ("hot dog", "animal")]
    expected = drawn(pipeline, 0.0, mixed([e[0] for e in encoded]),
                     mixed([e[1] for e in encoded]))
    assert np.abs(pixels(ours) - pixels(expected)).max() <= 2
    plain = flux.run(imagine_request(model="flux", prompt="hot dog", steps=2, guidance=0.0,
                                     sampler="flow_euler"))
    assert np.abs(pixels(ours) - pixels(plain)).max() > 2
