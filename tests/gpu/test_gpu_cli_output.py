"""What ``reelflow`` says about your GPU, run as a subprocess: every finding of ``gpu check``, models whose
files it cannot see as "not checked", an unreachable GPU named once, and no Prefect noise or tracebacks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.errors import GpuUnreachableError
from reelflow.gpu.reach import probe_for, reach
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.cli import run_cli
from tests.support.gpu import wan_spec

pytestmark = pytest.mark.usefixtures("fast_polls")
CLOSED = "http://127.0.0.1:9"
NO_FILES = {"diffusion_models": [], "loras": [], "text_encoders": [], "vae": []}


def _block(name: str, comfyui_url: str) -> dict[str, str]:
    """The endpoint saved the way a user does it, as the block the commands use."""
    saved = run_cli("gpu", "set", "--name", name, "--provider", "local", "--comfyui-url", comfyui_url)
    assert saved.returncode == 0, saved.stderr
    return {"REELFLOW_GPU_BLOCK": name, "COLUMNS": "80"}


def test_gpu_check_prints_the_health_line_and_the_missing_files(fresh_comfy: ComfyEmulator) -> None:
    fresh_comfy.configure(installed_models=NO_FILES)
    env = _block("out-check", fresh_comfy.url)
    done = run_cli("gpu", "check", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"at {fresh_comfy.url}" in done.stdout and done.stdout.startswith("ComfyUI "), done.stdout
    assert "vae/wan_2.1_vae.safetensors" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_gpu_show_and_check_end_without_prefect_queue_noise(fresh_comfy: ComfyEmulator) -> None:
    env = _block("out-quiet", fresh_comfy.url)
    for command in (("gpu", "show"), ("gpu", "check")):
        done = run_cli(*command, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == "", done.stderr


def test_models_says_not_checked_when_a_gpu_url_is_set_but_its_files_are_unseen(
        fresh_comfy: ComfyEmulator) -> None:
    fresh_comfy.configure(installed_models=NO_FILES)
    env = _block("out-models", fresh_comfy.url)
    listed = json.loads(run_cli("models", "--json", env=env).stdout)
    wan = next(m for m in listed if m["id"] == "wan-2.2-i2v-comfyui")
    assert wan["available"] and wan["unchecked"] and "reelflow gpu check" in wan["unchecked"][0]
    table = run_cli("models", env={**env, "COLUMNS": "200"}).stdout
    row = next(line for line in table.splitlines() if "wan-2.2-i2v-comfyui" in line)
    assert "not checked" in row and " yes " not in row, row


def test_an_unreachable_gpu_fails_with_one_clear_line_and_no_traceback(image: Path) -> None:
    env = _block("out-unreachable", CLOSED)
    spec = wan_spec(image, seed=12)
    done = run_cli("run", "--model", spec["model"], "--image", spec["image"], "--prompt", spec["prompt"],
                   "--frames", "17", "--fps", "16", "--resolution", "256x256", "--seed", "12", "--force", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "Crash detected" not in done.stderr, done.stderr
    text = " ".join((done.stdout + done.stderr).split())
    assert text.count("is unreachable") == 1 and f"ComfyUI at {CLOSED} is unreachable" in text, text
    debug = run_cli("--debug", "run", "--model", spec["model"], "--image", spec["image"], "--prompt",
                    spec["prompt"], "--frames", "17", "--fps", "16", "--resolution", "256x256", "--seed", "12",
                    "--force", env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr, "--debug shows the traceback"


def test_a_vast_gpu_without_a_url_says_so_and_names_the_url_it_tried(vast: VastEmulator) -> None:
    vast.configure(tunnels=[{"targetUrl": "http://localhost:18188", "tunnelUrl": CLOSED}])
    gpu = GpuEndpoint(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
                      vastai_api_url=vast.url, portal_token=PORTAL_TOKEN)
    try:
        with pytest.raises(GpuUnreachableError) as caught:
            asyncio.run(reach(gpu, "out-vast", "comfyui", probe_for(gpu, "comfyui")))
    finally:
        vast.reset()
    message = str(caught.value)
    assert "no ComfyUI URL is configured in GPU endpoint 'out-vast'" in message, message
    assert f"ComfyUI at {CLOSED} is unreachable" in message and message.count("is unreachable") == 1, message
    assert "(no URL configured)" not in message
