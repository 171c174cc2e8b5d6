"""A hub model that cannot be downloaded (no internet, HF_HUB_OFFLINE=1) stops a worker with
one line saying why and what to do, not diffusers' paragraph or a traceback."""

from __future__ import annotations

from tests.test_cli import dreamloop

SDXL_ENTRY = ('[models.sdxl]\nsource = "stabilityai/stable-diffusion-xl-base-1.0"\n'
              'pipeline = "StableDiffusionXLPipeline"\ndtype = "bfloat16"\n'
              'base_resolution = 1024\nsteps = 30\nguidance = 6.0\nsampler = "euler"\n'
              'license = "openrail++"\n')


def test_a_hub_model_without_internet_is_one_line_saying_why(cli_env, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('default = "sdxl"\n' + SDXL_ENTRY)
    env = cli_env | {"DREAMLOOP_MODELS_FILE": str(models), "HF_HUB_OFFLINE": "1",
                     "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "60"}
    result = dreamloop("worker", "--model", "sdxl", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: could not download model 'sdxl' (stabilityai/stable-diffusion-xl-base-1.0) "
        "from the Hugging Face hub: no internet (HF_HUB_OFFLINE is set) and it is not in the "
        f"cache at {tmp_path / 'hf' / 'hub'}; download it once where there is internet (hf "
        "download stabilityai/stable-diffusion-xl-base-1.0) and set HF_HOME to that cache, or "
        "set models.sdxl.source to a local folder"]


def test_a_local_folder_that_is_not_a_model_keeps_its_own_reason(cli_env, tmp_path):
    (tmp_path / "empty-model").mkdir()
    models = tmp_path / "models.toml"
    models.write_text('default = "sdxl"\n' + SDXL_ENTRY.replace(
        "stabilityai/stable-diffusion-xl-base-1.0", str(tmp_path / "empty-model")))
    env = cli_env | {"DREAMLOOP_MODELS_FILE": str(models), "HF_HUB_OFFLINE": "1"}
    result = dreamloop("worker", "--model", "sdxl", env=env, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot load model 'sdxl' from '{tmp_path / 'empty-model'}'" in result.stderr
    assert "Hugging Face hub" not in result.stderr
