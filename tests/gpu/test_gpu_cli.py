"""``reelflow gpu`` and ``reelflow vast``: the GpuEndpoint block through the real Prefect server, secrets masked.

Commands run in-process (typer's runner) except one ``gpu show`` in a new process, which proves the block
outlives the process that saved it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from blocks.gpu_endpoint import MASK, GpuEndpoint
from reelflow.cli.main import app
from reelflow.settings import reload_settings
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.cli import run_cli

SECRETS = (API_KEY, PORTAL_TOKEN, "cf-access-secret")

pytestmark = pytest.mark.usefixtures("fast_polls")


def _json(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Any:
    if env:
        os.environ.update(env)
        reload_settings()
    try:
        done = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        for key in env or {}:
            os.environ.pop(key, None)
        reload_settings()
    assert done.exit_code == code, done.output
    assert not any(secret in done.output for secret in SECRETS)
    return json.loads(done.stdout) if "--json" in args else " ".join(done.output.split())


def test_gpu_set_saves_the_block_and_show_masks_secrets(vast: VastEmulator, home: Path) -> None:
    shown = _json("gpu", "set", "--name", "cli-test", "--provider", "vastai", "--comfyui-url", "http://10.0.0.5:8188/",
                  "--vastai-instance-id", str(DEFAULT_INSTANCE_ID), "--vastai-api-key", API_KEY,
                  "--vastai-api-url", vast.url, "--portal-token", PORTAL_TOKEN,
                  "--tunnel-header", "CF-Access-Client-Secret: cf-access-secret", "--json")
    assert shown["comfyui_url"] == "http://10.0.0.5:8188" and shown["block"] == "cli-test"
    assert shown["vastai_api_key"] == shown["portal_token"] == shown["tunnel_auth_header_value"] == MASK
    _json("gpu", "set", "--name", "cli-test", "--concurrency", "2", "--fallback-model", "local-kenburns")

    loaded = GpuEndpoint.load("cli-test")
    assert loaded.vastai_api_key.get_secret_value() == API_KEY and loaded.comfyui_concurrency == 2
    assert loaded.auth_headers() == {"Authorization": f"Bearer {PORTAL_TOKEN}",
                                     "CF-Access-Client-Secret": "cf-access-secret"}
    done = run_cli("gpu", "show", "--name", "cli-test", "--json")
    assert done.returncode == 0 and not any(secret in done.stdout + done.stderr for secret in SECRETS)
    again = json.loads(done.stdout)
    assert again["comfyui_concurrency"] == 2 and again["fallback_model"] == "local-kenburns"
    assert again["portal_token"] == MASK
    note = json.loads((home / "gpu" / "cli-test.json").read_text())
    assert note["comfyui_url"] == "http://10.0.0.5:8188" and not any(s in str(note) for s in SECRETS)

    vast.configure(tunnels=[{"targetUrl": "http://localhost:18188", "tunnelUrl": "https://moved.trycloudflare.com"}])
    try:
        found = _json("gpu", "discover", "--name", "cli-test", "--json")
    finally:
        vast.reset()
    assert found["comfyui_url"] == "https://moved.trycloudflare.com"
    assert GpuEndpoint.load("cli-test").comfyui_url == "https://moved.trycloudflare.com"

    models = _json("models", "--json", env={"REELFLOW_GPU_BLOCK": "never-saved"})
    wan = next(m for m in models if m["id"] == "wan-2.2-i2v-comfyui")
    assert not wan["available"] and "reelflow gpu set" in wan["missing"][0]
    models = _json("models", "--json", env={"REELFLOW_GPU_BLOCK": "cli-test"})
    assert next(m for m in models if m["id"] == "wan-2.2-i2v-comfyui")["available"]


def test_vast_list_stop_start(vast: VastEmulator) -> None:
    env = {"VAST_API_KEY": API_KEY, "VAST_API_URL": vast.url}
    listed = _json("vast", "list", "--name", "none-such", "--json", env=env)
    assert [i["id"] for i in listed] == [DEFAULT_INSTANCE_ID] and listed[0]["dph_total"] == 0.42
    GpuEndpoint(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
                vastai_api_url=vast.url, portal_token=PORTAL_TOKEN).save("vast-test", overwrite=True)
    vast.configure(loading_polls=0)
    try:
        stopped = _json("vast", "stop", "--name", "vast-test")
        assert "$0.420/hour stops" in stopped and "$0.0082/hour" in stopped
        assert vast.stats()["instances"][DEFAULT_INSTANCE_ID]["actual_status"] == "exited"
        started = _json("vast", "start", "--name", "vast-test", "--wait", "--timeout", "30")
        assert "is running" in started and "https://comfy-emu.trycloudflare.com" in started
        assert GpuEndpoint.load("vast-test").comfyui_url == "https://comfy-emu.trycloudflare.com"
    finally:
        vast.reset()


def test_gpu_check_names_each_missing_file(fresh_comfy: ComfyEmulator) -> None:
    fresh_comfy.configure(installed_models={"diffusion_models": [], "loras": [], "text_encoders": [], "vae": []})
    GpuEndpoint(provider="local", comfyui_url=fresh_comfy.url).save("check-test", overwrite=True)
    text = _json("gpu", "check", "--name", "check-test", code=1)
    for file in ("diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                 "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
                 "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "vae/wan_2.1_vae.safetensors"):
        assert file in text
    assert fresh_comfy.stats()["submits"] == []
