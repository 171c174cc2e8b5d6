"""The engine on the tiny random-weight pipeline, loaded through from_pretrained."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from generation.contract import JobKind
from generation.engine import Cancelled, Engine
from generation.tiny import ensure_tiny_pipeline
from tests.factories import imagine_request


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(image) for image in images]


def same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(pixels(a), pixels(b), strict=True))


def test_tiny_random_is_saved_once_and_loaded_through_from_pretrained(tiny_engine, data_dir):
    folder = data_dir / "models" / "tiny-random"
    index = folder / "model_index.json"
    assert index.exists() and (folder / "unet").is_dir() and (folder / "tokenizer").is_dir()
    before = index.stat().st_mtime_ns
    ensure_tiny_pipeline(folder)
    assert index.stat().st_mtime_ns == before
    assert type(tiny_engine.pipeline).__name__ == "StableDiffusionPipeline"


def test_tokenizer_tells_prompts_apart(tiny_engine):
    tokenize = tiny_engine.pipeline.tokenizer
    assert tokenize("a red fox").input_ids != tokenize("a blue owl").input_ids


def test_engine_adds_no_drift_over_a_plain_diffusers_call(tiny_engine):
    request = imagine_request(seed=123)
    ours = tiny_engine.run(request)
    plain = tiny_engine.pipeline(
        prompt=[request.prompt] * 4, width=64, height=64, num_inference_steps=4,
        guidance_scale=7.5,
        generator=[torch.Generator("cpu").manual_seed(123 + i) for i in range(4)]).images
    assert len(ours) == 4
    assert same(ours, plain)


def test_same_seed_same_images_and_other_seeds_differ(tiny_engine):
    first = tiny_engine.run(imagine_request(seed=7))
    again = tiny_engine.run(imagine_request(seed=7))
    other = tiny_engine.run(imagine_request(seed=8))
    assert same(first, again)
    assert not np.array_equal(pixels(first)[0], pixels(first)[1])  # each slot its own seed
    # seed 8's first image is seed 7's second: image i uses seed + i
    assert np.array_equal(pixels(other)[0], pixels(first)[1])
    assert not np.array_equal(pixels(other)[3], pixels(first)[3])


def test_prompts_change_the_images(tiny_engine):
    fox = tiny_engine.run(imagine_request(prompt="a red fox"))
    owl = tiny_engine.run(imagine_request(prompt="a blue owl"))
    assert not same(fox, owl)


def test_a_batch_of_jobs_gives_each_job_its_own_images(tiny_engine):
    a, b = imagine_request(seed=1, num_images=2), imagine_request(seed=50, prompt="an owl")
    batched = tiny_engine.txt2img([a, b])
    assert [len(images) for images in batched] == [2, 4]
    # Batch size changes CPU kernels slightly, never the picture: within 2 levels of 255.
    for together, alone in ((batched[0], tiny_engine.run(a)), (batched[1], tiny_engine.run(b))):
        for x, y in zip(pixels(together), pixels(alone), strict=True):
            assert np.abs(x.astype(int) - y.astype(int)).max() <= 2


def test_incompatible_batch_is_refused_naming_the_request(tiny_engine):
    with pytest.raises(ValueError, match=r"requests\[1\] does not match requests\[0\]"):
        tiny_engine.txt2img([imagine_request(), imagine_request(steps=5)])


def test_a_request_for_another_model_is_refused(tiny_engine):
    with pytest.raises(ValueError, match="model is 'sdxl': this engine runs 'tiny-random'"):
        tiny_engine.run(imagine_request(model="sdxl"))


def test_progress_reports_every_step_with_a_preview_per_image(tiny_engine):
    seen = []
    tiny_engine.run(imagine_request(steps=5),
                    on_progress=lambda p: seen.append((p.step, p.total, p.previews())))
    assert [(step, total) for step, total, _ in seen] == [(i, 5) for i in range(1, 6)]
    previews = seen[-1][2]
    assert len(previews) == 4 and previews[0].mode == "RGB"
    assert previews[0].size == (32, 32)  # the latent size: no VAE decode


def test_cancel_stops_between_steps(tiny_engine):
    seen = []
    with pytest.raises(Cancelled):
        tiny_engine.run(imagine_request(steps=10), on_progress=lambda p: seen.append(p.step),
                        should_cancel=lambda: len(seen) >= 3)
    assert seen == [1, 2, 3]


def test_variation_runs_strength_times_steps_and_is_repeatable(tiny_engine):
    parent = tiny_engine.run(imagine_request())[1]
    subtle = imagine_request(kind=JobKind.VARIATION, parent_image="images/j/2.png",
                             strength=0.35, steps=10)
    strong = dataclasses.replace(subtle, strength=0.7)
    steps = {}
    for request in (subtle, strong):
        steps[request.strength] = []
        images = tiny_engine.run(request, parent=parent,
                                 on_progress=lambda p, s=steps[request.strength]: s.append(p.step))
        assert len(images) == 4 and images[0].size == (64, 64)
        assert not np.array_equal(pixels(images)[0], np.asarray(parent))
    assert (len(steps[0.35]), len(steps[0.7])) == (3, 7)
    assert same(tiny_engine.run(subtle, parent=parent), tiny_engine.run(subtle, parent=parent))


def test_an_image_prompt_starts_an_imagine_from_the_image(tiny_engine):
    """/imagine with an image is img2img from it: the image shapes the result, and --iw
    (as strength) sets how many of the steps are run over it."""
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1)))
    images = [ramp.convert("RGB"), ramp.transpose(Image.Transpose.ROTATE_90).convert("RGB")]
    request = imagine_request(parent_image="prompts/1.png", strength=0.25, steps=8)
    steps = []
    first = tiny_engine.run(request, parent=images[0], on_progress=lambda p: steps.append(p))
    assert len(steps) == 2 and len(first) == 4  # 8 steps × strength 0.25
    assert same(first, tiny_engine.run(request, parent=images[0]))
    assert not same(first, tiny_engine.run(request, parent=images[1]))


def test_variation_of_a_wrong_sized_parent_is_refused(tiny_engine):
    parent = tiny_engine.run(imagine_request())[0].resize((128, 64))
    request = imagine_request(kind=JobKind.VARIATION, parent_image="k", strength=0.5)
    with pytest.raises(ValueError, match="image size is 128x64: the request says 64x64"):
        tiny_engine.run(request, parent=parent)


def test_upscale_doubles_both_sides_and_is_repeatable(tiny_engine):
    image = tiny_engine.run(imagine_request())[0]
    request = imagine_request(kind=JobKind.UPSCALE, parent_image="k", strength=0.3, num_images=1)
    big = tiny_engine.run(request, parent=image)
    assert len(big) == 1 and big[0].size == (128, 128)
    assert same(big, tiny_engine.run(request, parent=image))


def test_a_parent_is_required_for_variation(tiny_engine):
    request = imagine_request(kind=JobKind.VARIATION, parent_image="k", strength=0.5)
    with pytest.raises(ValueError, match="parent is None"):
        tiny_engine.run(request)


def test_tile_changes_the_image_and_is_undone_afterwards(tiny_engine):
    plain = tiny_engine.run(imagine_request())
    tiled = tiny_engine.run(imagine_request(tile=True))
    assert not same(plain, tiled)
    convs = [m for m in tiny_engine.pipeline.unet.modules() if isinstance(m, torch.nn.Conv2d)]
    assert {conv.padding_mode for conv in convs} == {"zeros"}
    assert same(plain, tiny_engine.run(imagine_request()))


def test_samplers_switch_without_leaking_options(tiny_engine):
    euler = tiny_engine.run(imagine_request())
    ancestral = tiny_engine.run(imagine_request(sampler="euler_a"))
    karras = tiny_engine.run(imagine_request(sampler="dpmpp_2m_karras"))
    plain_2m = tiny_engine.run(imagine_request(sampler="dpmpp_2m"))
    assert not same(euler, ancestral) and not same(karras, plain_2m)
    assert tiny_engine.pipeline.scheduler.config.use_karras_sigmas is False
    assert same(euler, tiny_engine.run(imagine_request()))


@pytest.mark.gpu
def test_cuda_runs_in_the_registry_dtype(data_dir):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from generation.registry import tiny_random_spec

    spec = dataclasses.replace(tiny_random_spec(data_dir), dtype="bfloat16")
    engine = Engine.load(spec)
    assert engine.pipeline.unet.dtype == torch.bfloat16
    assert len(engine.run(imagine_request())) == 4


def test_a_model_that_cannot_be_loaded_says_which_and_why(data_dir, tmp_path):
    from generation.registry import ModelLoadError, tiny_random_spec

    missing = dataclasses.replace(tiny_random_spec(data_dir), name="mine", builtin=False,
                                  source=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match=f"cannot load model 'mine' from '{missing.source}'"):
        Engine.load(missing, device="cpu")
    not_a_pipeline = dataclasses.replace(missing, pipeline="AutoencoderKL")
    with pytest.raises(ModelLoadError, match="pipeline is 'AutoencoderKL': not a diffusers"):
        Engine.load(not_a_pipeline, device="cpu")


def test_variations_of_two_parents_share_one_call(tiny_engine):
    parents = tiny_engine.run(imagine_request())[:2]
    requests = [imagine_request(kind=JobKind.VARIATION, parent_image=f"images/j/{slot}.png",
                                strength=0.5, seed=seed, num_images=2)
                for slot, seed in ((1, 10), (2, 20))]
    steps = []
    together = tiny_engine.run_batch(requests, parents, on_progress=lambda p: steps.append(p))
    assert len(steps) == 2  # one call: 4 steps × 0.5 strength, reported once per step
    assert [len(images) for images in together] == [2, 2]
    for images, request, parent in zip(together, requests, parents, strict=True):
        alone = tiny_engine.run(request, parent=parent)
        for x, y in zip(pixels(images), pixels(alone), strict=True):
            assert np.abs(x.astype(int) - y.astype(int)).max() <= 2
