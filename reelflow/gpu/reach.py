"""Before a GPU job: is the vast.ai instance running, does the service answer, and if not, has its tunnel moved?

Quick-tunnel URLs change whenever an instance restarts; the Instance Portal knows the new one, so an
unreachable URL is looked up again there and the block updated.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.errors import ProviderError, ReelflowError, TransientProviderError
from reelflow.gpu.errors import GpuUnreachableError
from reelflow.providers.vastai import Instance, VastClient, discover_service_urls

log = logging.getLogger(__name__)

Service = Literal["comfyui", "swarmui"]
Probe = Callable[[str], Awaitable[None]]
FIELDS: dict[Service, str] = {"comfyui": "comfyui_url", "swarmui": "swarmui_url"}


@dataclass(frozen=True)
class Reached:
    url: str
    instance: Instance | None
    moved_from: str | None = None


def vast_client(gpu: GpuEndpoint) -> VastClient:
    """A client that gives up quickly: a GPU job should not wait minutes on the vast.ai console."""
    assert gpu.vastai_api_key is not None
    return VastClient(gpu.vastai_api_key, base_url=gpu.vastai_api_url, timeout=15.0, max_attempts=3, max_backoff_s=5.0)


async def vast_instance(gpu: GpuEndpoint) -> Instance | None:
    """The configured vast.ai instance (for its state and $/hour), or None when there is none or vast.ai fails."""
    if gpu.provider != "vastai" or gpu.vastai_instance_id is None or gpu.vastai_api_key is None:
        return None
    try:
        async with vast_client(gpu) as vast:
            return await vast.show_instance(gpu.vastai_instance_id)
    except ReelflowError as exc:
        log.warning("could not read vast.ai instance %s: %s", gpu.vastai_instance_id, exc)
        return None


async def _probe(probe: Probe, url: str) -> Exception | None:
    try:
        await probe(url)
    except (TransientProviderError, ProviderError) as exc:
        return exc
    return None


async def reach(gpu: GpuEndpoint, name: str, service: Service, probe: Probe) -> Reached:
    """The service's working URL; ``GpuUnreachableError`` (nothing submitted yet) when there is none."""
    instance = await vast_instance(gpu)
    if instance is not None and not instance.is_running:
        raise GpuUnreachableError(
            f"vast.ai instance {instance.id} is not running (status {instance.actual_status!r}"
            f"{', ' + instance.status_msg if instance.status_msg else ''}); start it with "
            f"`reelflow vast start {instance.id} --wait`")
    field = FIELDS[service]
    url: str | None = getattr(gpu, field)
    error = await _probe(probe, url) if url else None
    if url and error is None:
        return Reached(url, instance)
    if instance is not None:
        try:
            fresh = getattr(await discover_service_urls(instance, gpu.portal_token), field)
        except ReelflowError as exc:
            fresh, error = None, error or exc
        if fresh and fresh != url:
            moved = await _probe(probe, fresh)
            if moved is None:
                setattr(gpu, field, fresh)
                await gpu.asave(name, overwrite=True)
                return Reached(fresh, instance, moved_from=url)
            error = moved
    where = url or "(no URL configured)"
    hint = "" if instance is not None else "; check the URL with `reelflow gpu show` and `reelflow gpu check`"
    raise GpuUnreachableError(f"{service} at {where} is unreachable: {error or 'no URL'}{hint}")
