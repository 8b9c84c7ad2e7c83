"""``POST /api/gpu/discover`` and ``POST /api/gpu/check`` over the REST API against the vast.ai and ComfyUI
emulators: the same findings as ``reelflow gpu discover|check``."""

from __future__ import annotations

import httpx

from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.gpu import save_gpu


def test_discover_saves_the_tunnel_urls(client: httpx.Client, vast: VastEmulator) -> None:
    save_gpu(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
             vastai_api_url=vast.url, portal_token=PORTAL_TOKEN, comfyui_url="http://10.0.0.5:8188")
    vast.configure(tunnels=[{"targetUrl": "http://localhost:18188", "tunnelUrl": "https://moved.trycloudflare.com"}])
    try:
        found = client.post("/api/gpu/discover")
    finally:
        vast.reset()
    assert found.status_code == 200, found.text
    assert found.json()["comfyui_url"] == "https://moved.trycloudflare.com"
    assert API_KEY not in found.text and PORTAL_TOKEN not in found.text
    assert client.get("/api/gpu/config").json()["comfyui_url"] == "https://moved.trycloudflare.com"

    save_gpu(provider="local", comfyui_url="http://10.0.0.5:8188")
    refused = client.post("/api/gpu/discover")
    assert refused.status_code == 409 and "discovery needs --provider vastai" in refused.json()["error"]


def test_check_reports_health_and_each_missing_file(client: httpx.Client, fresh_comfy: ComfyEmulator) -> None:
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    healthy = client.post("/api/gpu/check").json()
    assert healthy["ok"] is True and healthy["error"] is None
    assert any(line.startswith("ComfyUI") and fresh_comfy.url in line for line in healthy["lines"])

    fresh_comfy.configure(installed_models={"diffusion_models": [], "loras": [], "text_encoders": [], "vae": []})
    missing = client.post("/api/gpu/check").json()
    assert missing["ok"] is False and len(missing["lines"]) == 1  # the health line, then the failure
    assert "vae/wan_2.1_vae.safetensors" in missing["error"]
    assert fresh_comfy.stats()["submits"] == []


def test_an_unreachable_comfyui_is_said_in_words_not_exception_names(client: httpx.Client) -> None:
    save_gpu(provider="local", comfyui_url="http://127.0.0.1:9")
    found = client.post("/api/gpu/check").json()
    assert found["ok"] is False and "ComfyUI at http://127.0.0.1:9 is unreachable: could not connect" in found["error"]
    assert "ConnectError" not in found["error"] and "(" + "'" not in found["error"]
