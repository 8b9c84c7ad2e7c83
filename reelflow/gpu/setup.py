"""Setting a GPU endpoint up: find its URLs on vast.ai (``discover``) and check that it can render (``check``);
``reelflow gpu discover|check`` and ``POST /api/gpu/discover|check`` both use these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reelflow.errors import ReelflowError


async def discover(name: str | None) -> tuple[str, Any, Any]:
    """The vast.ai instance's ComfyUI/SwarmUI URLs (Instance Portal quick tunnels), saved on the endpoint:
    ``(block name, endpoint, urls)``."""
    from reelflow.gpu.endpoint import block_name, load_endpoint, save_endpoint
    from reelflow.gpu.reach import vast_client
    from reelflow.providers.vastai import discover_service_urls

    gpu = await load_endpoint("gpu", name)
    if gpu.provider != "vastai" or gpu.vastai_instance_id is None or gpu.vastai_api_key is None:
        raise ReelflowError("discovery needs --provider vastai, --vastai-instance-id and --vastai-api-key "
                            "(set them with `reelflow gpu set`)")
    async with vast_client(gpu) as vast:
        instance = await vast.show_instance(gpu.vastai_instance_id)
    urls = await discover_service_urls(instance, gpu.portal_token)
    gpu.comfyui_url = urls.comfyui_url or gpu.comfyui_url
    gpu.swarmui_url = urls.swarmui_url or gpu.swarmui_url
    await save_endpoint(gpu, name)
    return block_name(name), gpu, urls


async def check(name: str | None, say: Callable[[str], None]) -> None:
    """Health check and model preflight; each finding is said as soon as it is known, so a health line still
    shows when a later check fails."""
    from reelflow.core.catalog.workflows import WAN22_MODEL, wan22_template
    from reelflow.gpu.endpoint import load_endpoint
    from reelflow.gpu.reach import comfy_client, swarm_client

    gpu = await load_endpoint("gpu", name)
    if not (gpu.comfyui_url or gpu.swarmui_url):
        raise ReelflowError("no ComfyUI or SwarmUI URL is set; `reelflow gpu set --comfyui-url URL` or `gpu discover`")
    if gpu.comfyui_url:
        async with comfy_client(gpu, gpu.comfyui_url) as comfy:
            stats = await comfy.health()
            devices = ", ".join(str(d.get("name")) for d in stats.get("devices") or []) or "no GPU listed"
            say(f"ComfyUI {stats['system'].get('comfyui_version', '?')} at {gpu.comfyui_url}: {devices}")
            await comfy.preflight(wan22_template().graph)
            say(f"{WAN22_MODEL}: every model file is installed")
    if gpu.swarmui_url:
        async with swarm_client(gpu, gpu.swarmui_url) as swarm:
            models = await swarm.preflight()
            say(f"SwarmUI at {gpu.swarmui_url}: models {models.high_noise}, {models.low_noise}")
