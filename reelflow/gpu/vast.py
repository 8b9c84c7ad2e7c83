"""What ``reelflow vast list|start|stop`` do, with the API key given or the GPU endpoint's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from reelflow.errors import ReelflowError
from reelflow.gpu.cost import storage_usd_per_hour
from reelflow.providers.vastai import DEFAULT_API_URL, Instance, VastClient, discover_service_urls

WAIT_POLL_S = 10.0


async def _context(api_key: str | None, api_url: str | None, name: str | None) -> tuple[VastClient, Any]:
    from reelflow.gpu.endpoint import find_endpoint

    gpu = await find_endpoint(name) if api_key is None or api_url is None else None
    key = api_key or (gpu.vastai_api_key if gpu else None)
    if not key:
        raise ReelflowError("no vast.ai API key: pass --api-key (or VAST_API_KEY), or save one with "
                            "`reelflow gpu set --vastai-api-key KEY`")
    return VastClient(key, base_url=api_url or (gpu.vastai_api_url if gpu else DEFAULT_API_URL)), gpu


def _storage_note(instance: Instance) -> str:
    rate = storage_usd_per_hour(instance)
    cost = f"${rate:.4f}/hour (${rate * 24:.2f}/day)" if rate is not None else "its storage rate"
    return f"its disk still costs {cost} until you destroy the instance on vast.ai"


async def _wait_running(vast: VastClient, instance_id: int, wait_s: float) -> Instance:
    deadline = time.monotonic() + wait_s
    while True:
        instance = await vast.show_instance(instance_id)
        if instance.is_running:
            return instance
        if time.monotonic() >= deadline:
            raise ReelflowError(f"instance {instance_id} is still {instance.actual_status!r} after {wait_s:g} s "
                                f"({instance.status_msg or 'no message'}); another renter may hold its GPU")
        await asyncio.sleep(min(WAIT_POLL_S, max(0.0, deadline - time.monotonic())))


async def vast_action(api_key: str | None, api_url: str | None, name: str | None, action: str,
                      instance_id: int | None, wait_s: float = 0.0) -> dict[str, Any]:
    vast, gpu = await _context(api_key, api_url, name)
    async with vast:
        if action == "list":
            return {"instances": [i.model_dump(mode="json") for i in await vast.list_instances()]}
        instance_id = instance_id or (gpu.vastai_instance_id if gpu else None)
        if instance_id is None:
            raise ReelflowError("no instance id: pass one, or save it with `reelflow gpu set --vastai-instance-id ID`")
        if action == "stop":
            await vast.stop_instance(instance_id)
            instance = await vast.show_instance(instance_id)
            rate = f"${instance.dph_total:.3f}/hour" if instance.dph_total is not None else "its GPU rate"
            return {"message": f"stopping instance {instance_id}: {rate} stops; {_storage_note(instance)}"}
        await vast.start_instance(instance_id)
        if wait_s <= 0:
            return {"message": f"starting instance {instance_id}; `reelflow vast list` shows when it runs, then "
                               "`reelflow gpu discover` finds its new tunnel URLs"}
        instance = await _wait_running(vast, instance_id, wait_s)
    message = f"instance {instance_id} is running (${instance.dph_total or 0:.3f}/hour)"
    if gpu is not None and gpu.vastai_instance_id == instance_id:
        from reelflow.gpu.endpoint import save_endpoint

        urls = await discover_service_urls(instance, gpu.portal_token)
        gpu.comfyui_url = urls.comfyui_url or gpu.comfyui_url
        gpu.swarmui_url = urls.swarmui_url or gpu.swarmui_url
        await save_endpoint(gpu, name)
        message += f"; ComfyUI {gpu.comfyui_url or '-'}, SwarmUI {gpu.swarmui_url or '-'} saved"
    return {"message": message}
