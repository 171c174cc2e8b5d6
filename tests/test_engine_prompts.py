"""Multi-prompt weights and --stop, drawn by the real engine on the tiny pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler
from PIL import Image

from generation.contract import JobKind, PromptPart
from tests.factories import imagine_request

HOT_DOG = (PromptPart("hot dog", 2.0), PromptPart("animal", -0.5))


def pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.int16) for image in images])


def close(a, b, levels: int = 2) -> bool:
    """Equal up to float rounding: at most `levels` of 255 apart anywhere."""
    return int(np.abs(pixels(a) - pixels(b)).max()) <= levels


def generators(seed: int) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(seed + i) for i in range(4)]


def test_weighted_parts_are_the_weighted_mean_of_their_embeddings(tiny_engine):
    pipeline = tiny_engine.pipeline
    request = imagine_request(prompt="hot dog::2 animal::-0.5", prompt_parts=HOT_DOG, seed=3)
    ours = tiny_engine.run(request)
    # Σ wᵢ·E(partᵢ) / Σ wᵢ: here (2·E(hot dog) − 0.5·E(animal)) / 1.5
    hot_dog, _ = pipeline.encode_prompt("hot dog", "cpu", 1, False)
    animal, _ = pipeline.encode_prompt("animal", "cpu", 1, False)
    mixed = (2 * hot_dog - 0.5 * animal) / 1.5
    expected = pipeline(prompt_embeds=mixed.repeat(4, 1, 1), width=64, height=64,
                        num_inference_steps=4, guidance_scale=7.5,
                        generator=generators(3)).images
    assert close(ours, expected)
    literal = tiny_engine.run(imagine_request(prompt="hot dog::2 animal::-0.5", seed=3))
    plain = tiny_engine.run(imagine_request(prompt="hot dog", seed=3))
    assert not close(ours, literal) and not close(ours, plain)


def test_one_part_at_any_weight_is_the_plain_prompt(tiny_engine):
    plain = tiny_engine.run(imagine_request(prompt="a", seed=5))
    for weight in (1.0, 2.0):
        weighted = tiny_engine.run(imagine_request(prompt=f"a::{weight:g}", seed=5,
                                                   prompt_parts=(PromptPart("a", weight),)))
        assert close(weighted, plain)


def test_a_batch_mixes_weighted_and_plain_jobs(tiny_engine):
    weighted = imagine_request(prompt="hot dog::2 animal::-0.5", prompt_parts=HOT_DOG, seed=3)
    plain = imagine_request(prompt="a red fox", seed=11, negative_prompt="blurry")
    together = tiny_engine.run_batch([weighted, plain])
    assert close(together[0], tiny_engine.run(weighted))
    assert close(together[1], tiny_engine.run(plain))


def test_an_image_prompt_with_weights_goes_through_img2img(tiny_engine):
    start = Image.new("RGB", (64, 64), (200, 30, 30))
    request = imagine_request(prompt="hot dog::2 animal::-0.5", prompt_parts=HOT_DOG,
                              parent_image="prompts/1.png", strength=0.5)
    weighted = tiny_engine.run(request, start)
    literal = tiny_engine.run(imagine_request(prompt=request.prompt, parent_image="prompts/1.png",
                                              strength=0.5), start)
    assert len(weighted) == 4 and not close(weighted, literal)


def test_stop_50_runs_half_the_steps_and_differs_from_the_full_run(tiny_engine):
    seen = []
    stopped = tiny_engine.run(imagine_request(steps=10, stop=50),
                              on_progress=lambda p: seen.append((p.step, p.total)))
    assert seen == [(i, 5) for i in range(1, 6)]  # 5 of 10 steps, reported out of 5
    full = tiny_engine.run(imagine_request(steps=10))
    # The tiny model's random weights settle fast, so the two are near: but not the same.
    assert not np.array_equal(pixels(stopped), pixels(full))
    assert np.array_equal(pixels(tiny_engine.run(imagine_request(steps=10, stop=100))),
                          pixels(full))


def test_stop_on_euler_lands_its_last_step_on_the_finished_estimate(tiny_engine):
    # The first half of the 10-step schedule with its last step aimed at sigma 0: a soft,
    # unfinished image (Midjourney's look), not the noisy midpoint.
    stopped = tiny_engine.run(imagine_request(steps=10, stop=50, seed=3))
    scheduler = EulerDiscreteScheduler.from_config(tiny_engine.pipeline.scheduler.config)
    scheduler.set_timesteps(10)
    sigmas = [*scheduler.sigmas[:5].tolist(), 0.0]
    expected = tiny_engine.pipeline(prompt=["a red fox in snow"] * 4, width=64, height=64,
                                    sigmas=sigmas, guidance_scale=7.5,
                                    generator=generators(3)).images
    assert close(stopped, expected)


def test_stop_counts_the_steps_img2img_runs(tiny_engine):
    seen = []
    start = Image.new("RGB", (64, 64), (30, 200, 30))
    tiny_engine.run(imagine_request(kind=JobKind.VARIATION, steps=10, parent_image="x.png",
                                    strength=0.6, stop=50), start,
                    on_progress=lambda p: seen.append(p.step))
    assert seen == [1, 2, 3]  # 6 steps at strength .6, half of them


def test_stop_is_part_of_the_batch_key(tiny_engine):
    with pytest.raises(ValueError, match=r"requests\[1\] does not match.*stop"):
        tiny_engine.run_batch([imagine_request(), imagine_request(stop=50)])
