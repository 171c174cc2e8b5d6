"""The dreamloop command, run as a person runs it: a real process on the tiny-random model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


def dreamloop(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess:
    # The console script pip installed beside this interpreter, as a person would run it.
    command = Path(sys.executable).parent / "dreamloop"
    assert command.exists(), "the dreamloop console command is not installed"
    return subprocess.run([str(command), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=240)


@pytest.fixture(scope="module")
def fox_runs(tmp_path_factory, data_dir):
    """`dreamloop imagine "a red fox --seed 7"` run twice, and once with seed 8."""
    env = {"PATH": os.environ["PATH"], "DREAMLOOP_DATA_DIR": str(data_dir)}
    runs = {}
    for name, seed in (("first", 7), ("again", 7), ("other", 8)):
        folder = tmp_path_factory.mktemp(name)
        result = dreamloop("imagine", f"a red fox --seed {seed}", "--model", "tiny-random",
                           "--out", "fox.webp", env=env, cwd=folder)
        assert result.returncode == 0, result.stderr
        runs[name] = (folder, result)
    return runs


def test_imagine_writes_the_grid_and_four_full_images(fox_runs):
    folder, result = fox_runs["first"]
    with Image.open(folder / "fox.webp") as grid:
        assert grid.format == "WEBP" and grid.size == (128, 128)
    for slot in range(1, 5):
        with Image.open(folder / f"fox-{slot}.png") as image:
            assert image.format == "PNG" and image.size == (64, 64)
    assert "seed 7: wrote fox.webp and 4 PNGs beside it" in result.stdout


def test_imagine_twice_gives_byte_identical_pngs(fox_runs):
    first, again = fox_runs["first"][0], fox_runs["again"][0]
    for slot in range(1, 5):
        name = f"fox-{slot}.png"
        assert (first / name).read_bytes() == (again / name).read_bytes()


def test_another_seed_gives_other_images(fox_runs):
    first, other = fox_runs["first"][0], fox_runs["other"][0]
    for slot in range(1, 5):
        name = f"fox-{slot}.png"
        assert (first / name).read_bytes() != (other / name).read_bytes()


def test_repeat_writes_one_grid_per_repeat_with_fresh_seeds(cli_env, tmp_path):
    result = dreamloop("imagine", "an owl --seed 7 --repeat 2", "--model", "tiny-random",
                       "--out", "owl.jpg", env=cli_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "seed 7: wrote owl.jpg" in result.stdout
    assert "seed 11: wrote owl-r2.jpg" in result.stdout
    assert (tmp_path / "owl-r2-4.png").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["a fox --seed -1"], "--seed value '-1' is out of range: use --seed N, a whole number"),
    (["a fox --sed 4"], "Unknown flag --sed (did you mean --seed?)"),
    (["a fox", "--model", "sdxk"], "model is 'sdxk': known models are flux-schnell, sd15"),
    (["a fox --no"], "--no needs a value: use --no A, B"),
])
def test_bad_input_is_one_clear_line_and_exit_code_2(cli_env, tmp_path, args, message):
    result = dreamloop("imagine", *args, "--out", "x.webp", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.split())
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_imagine_without_out_says_it_is_required(cli_env, tmp_path):
    result = dreamloop("imagine", "a fox", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "the following arguments are required: --out" in result.stderr


def test_a_grid_file_of_an_unknown_type_is_refused(cli_env, tmp_path):
    result = dreamloop("imagine", "a fox", "--out", "fox.gif", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "--out is 'fox.gif': the grid file must end in .webp, .jpeg, .jpg, .png" in (
        " ".join(result.stderr.split()))


def test_a_missing_models_file_stops_start_up_with_a_sentence(cli_env, tmp_path):
    env = cli_env | {"DREAMLOOP_MODELS_FILE": str(tmp_path / "nope.toml")}
    result = dreamloop("imagine", "a fox", "--out", "fox.webp", env=env, cwd=tmp_path)
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "dreamloop cannot start: DREAMLOOP_MODELS_FILE: there is no file at" in text


def test_bench_engine_ends_with_a_json_line_of_figures(cli_env):
    result = dreamloop("bench", "engine", "--json", "--repeats", "1", env=cli_env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("engine_s_per_job", "plain_s_per_job", "grid_encode_ms", "png4_encode_ms"):
        assert figures[key] > 0
    assert figures["engine_vs_plain"] == pytest.approx(
        figures["engine_s_per_job"] / figures["plain_s_per_job"], rel=0.01)
    assert figures["model"] == "tiny-random" and figures["images_per_job"] == 4


def test_a_model_that_cannot_be_fetched_is_one_clear_line(cli_env, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('default = "hubby"\n[models.hubby]\nsource = "someone/not-here"\n'
                      'pipeline = "StableDiffusionPipeline"\ndtype = "float16"\n'
                      'base_resolution = 512\nsteps = 20\nguidance = 7.0\nsampler = "euler"\n'
                      'license = "test"\n')
    env = cli_env | {"DREAMLOOP_MODELS_FILE": str(models), "HF_HUB_OFFLINE": "1"}
    result = dreamloop("imagine", "a fox", "--out", "fox.webp", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "could not download model 'hubby' (someone/not-here) from the Hugging Face hub" in (
        " ".join(result.stderr.split()))


def test_bench_pool_ends_with_a_json_line_of_figures(cli_env, redis_url):
    env = cli_env | {"DREAMLOOP_REDIS_URL": redis_url}
    result = dreamloop("bench", "pool", "--jobs", "2", "--json", env=env)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["jobs"] == 2 and figures["direct_jobs_per_s"] > 0
    assert figures["pool_vs_direct"] == pytest.approx(
        figures["pool_jobs_per_s"] / figures["direct_jobs_per_s"], rel=0.02)
    assert 0 <= figures["queue_overhead_ms_p50"] <= figures["queue_overhead_ms_p95"]


@pytest.mark.parametrize(("args", "message"), [
    (["bench", "pool", "--max-batch", "0"], "--max-batch: 0 is not above zero"),
    (["bench", "engine", "--repeats", "x"], "--repeats: 'x' is not a number"),
    (["worker", "--grace", "-1"], "--grace: -1 is not above zero"),
])
def test_numeric_arguments_must_be_above_zero(cli_env, args, message):
    result = dreamloop(*args, env=cli_env)
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize("command", [("run", "--sync-commands", "--model", "tiny-random"),
                                     ("bot",), ("sync-commands",)])
def test_without_a_token_the_bot_commands_say_how_to_make_a_bot(cli_env, command):
    result = dreamloop(*command, env=cli_env | {"DREAMLOOP_DISCORD_TOKEN": ""})
    assert result.returncode == 2
    assert "https://discord.com/developers/applications" in result.stderr
    assert "DREAMLOOP_DISCORD_TOKEN" in result.stderr and "Traceback" not in result.stderr
