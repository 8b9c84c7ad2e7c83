"""GpuEndpoint block as a pydantic model (saving/loading is covered with the Prefect fixture)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from blocks.gpu_endpoint import MASK, GpuEndpoint
from reelflow.errors import ReelflowError
from reelflow.gpu.reach import comfy_client, swarm_client, vast_client
from reelflow.providers.swarmui import SwarmClient
from reelflow.providers.vastai import VastClient

SECRETS = {"vastai_api_key": "vast-key-abc", "portal_token": "web-pass-def",
           "tunnel_auth_header_value": "cf-secret-ghi", "tunnel_auth_cookie": "C.4242_auth_token=jkl"}


def _full() -> GpuEndpoint:
    return GpuEndpoint(provider="vastai", comfyui_url="https://c.trycloudflare.com/",
                       swarmui_url="http://1.2.3.4:41865", vastai_instance_id=4242,
                       tunnel_auth_header_name="CF-Access-Client-Secret", **SECRETS)


def test_block_identity_and_defaults() -> None:
    gpu = GpuEndpoint()
    assert GpuEndpoint._block_type_name == "GPU Endpoint"
    assert GpuEndpoint.get_block_type_slug() == "gpu-endpoint"
    assert (gpu.provider, gpu.comfyui_concurrency, gpu.job_deadline_minutes, gpu.idle_stop_minutes) == (
        "none", 1, 30, 20)
    assert gpu.vastai_api_url == "https://console.vast.ai/api/v0"
    assert not gpu.allow_resubmit_lost_jobs and gpu.fallback_model is None
    assert gpu.auth_headers() == {}


def test_masked_hides_every_secret() -> None:
    gpu = _full()
    masked = gpu.masked()
    assert set(masked) == set(GpuEndpoint.model_fields)
    assert all(masked[name] == MASK for name in SECRETS)
    assert masked["comfyui_url"] == "https://c.trycloudflare.com" and masked["vastai_instance_id"] == 4242
    shown = str(masked) + repr(gpu) + str(gpu)
    assert not any(value in shown for value in SECRETS.values())
    empty = GpuEndpoint().masked()
    assert empty["vastai_api_key"] is None and empty["portal_token"] is None


def test_auth_headers_build_header_and_cookie() -> None:
    assert _full().auth_headers() == {"Authorization": "Bearer web-pass-def",
                                      "CF-Access-Client-Secret": "cf-secret-ghi",
                                      "Cookie": "C.4242_auth_token=jkl"}
    only_cookie = GpuEndpoint(tunnel_auth_cookie="swarm_token=x")
    assert only_cookie.auth_headers() == {"Cookie": "swarm_token=x"}


@pytest.mark.parametrize("field", ["comfyui_url", "swarmui_url", "vastai_api_url"])
@pytest.mark.parametrize("bad", ["ftp://host/x", "not a url", "file:///etc/passwd", "http://"])
def test_urls_must_be_http(field: str, bad: str) -> None:
    with pytest.raises(ValidationError, match=f"{field}: .*http"):
        GpuEndpoint(**{field: bad})


def test_header_name_and_value_go_together() -> None:
    with pytest.raises(ValidationError, match="tunnel_auth_header_name"):
        GpuEndpoint(tunnel_auth_header_name="X-Auth")
    with pytest.raises(ValidationError, match="tunnel_auth_header_name"):
        GpuEndpoint(tunnel_auth_header_value="secret")
    with pytest.raises(ValidationError, match="not a valid header name"):
        GpuEndpoint(tunnel_auth_header_name="Bad Header:", tunnel_auth_header_value="secret")


def test_cookie_must_be_a_pair() -> None:
    with pytest.raises(ValidationError, match="tunnel_auth_cookie") as info:
        GpuEndpoint(tunnel_auth_cookie="justavalue")
    assert "justavalue" not in str(info.value)


def test_provider_must_be_known() -> None:
    with pytest.raises(ValidationError, match="provider"):
        GpuEndpoint(provider="runpod")


async def test_ready_clients_carry_the_blocks_auth() -> None:
    gpu = _full()
    vast = vast_client(gpu)
    swarm = swarm_client(gpu, gpu.swarmui_url)
    comfy = comfy_client(gpu, gpu.comfyui_url)
    try:
        assert isinstance(vast, VastClient) and "vast-key-abc" not in repr(vast)
        assert isinstance(swarm, SwarmClient) and swarm.base_url == "http://1.2.3.4:41865"
        assert comfy.auth_headers == gpu.auth_headers() and comfy.auth_headers
    finally:
        await vast.aclose()
        await swarm.aclose()
        await comfy.aclose()
    with pytest.raises(ReelflowError, match="vastai-api-key"):
        vast_client(GpuEndpoint())
