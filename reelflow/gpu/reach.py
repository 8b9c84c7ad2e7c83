"""Reaching your GPU: its clients, the probes that say whether a service answers, and the working URL.

Before a GPU job: is the vast.ai instance running, does the service answer, and if not, has its tunnel moved?
Quick-tunnel URLs change whenever an instance restarts; the Instance Portal knows the new one, so an
unreachable URL is looked up again there and the block updated.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.domain import GPU_URL_FIELD, GpuBackend
from reelflow.errors import GpuUnreachableError, ProviderError, ReelflowError, SpecError
from reelflow.gpu.endpoint import check_service_url, save_endpoint
from reelflow.providers.comfyui import ComfyClient
from reelflow.providers.swarmui import SwarmClient, SwarmStatus
from reelflow.providers.vastai import Instance, VastClient, discover_service_urls

log = logging.getLogger(__name__)

Probe = Callable[[str], Awaitable[None]]
SERVICE_NAMES: dict[GpuBackend, str] = {"comfyui": "ComfyUI", "swarmui": "SwarmUI"}
PROBE_TIMEOUT_S = 15.0
"""Probes, and vast.ai calls made while a job waits, give up this quickly instead of a job call's minutes."""


@dataclass(frozen=True)
class Reached:
    url: str
    instance: Instance | None
    moved_from: str | None = None


def comfy_client(gpu: GpuEndpoint, url: str, *, probe: bool = False) -> ComfyClient:
    """A client for the ComfyUI at ``url`` with the block's tunnel auth; ``probe`` gives up quickly."""
    return ComfyClient(url, headers=gpu.auth_headers(), **({"timeout_s": PROBE_TIMEOUT_S} if probe else {}))


def swarm_client(gpu: GpuEndpoint, url: str, *, probe: bool = False, **options: float) -> SwarmClient:
    """A client for the SwarmUI at ``url`` with the block's tunnel auth; ``probe`` gives up quickly."""
    return SwarmClient(url, headers=gpu.auth_headers(), **({"timeout": PROBE_TIMEOUT_S} if probe else {}), **options)


def vast_client(gpu: GpuEndpoint, *, timeout: float = PROBE_TIMEOUT_S, max_attempts: int = 3,
                max_backoff_s: float = 5.0) -> VastClient:
    """A client that gives up quickly: a GPU job, a request or a command should not wait minutes on vast.ai."""
    if gpu.vastai_api_key is None:
        raise ReelflowError("no vast.ai API key is saved: `reelflow gpu set --vastai-api-key KEY`")
    return VastClient(gpu.vastai_api_key, base_url=gpu.vastai_api_url, timeout=timeout, max_attempts=max_attempts,
                      max_backoff_s=max_backoff_s)


async def comfy_health(gpu: GpuEndpoint, url: str) -> dict[str, Any]:
    """ComfyUI's ``/system_stats``; ``ComfyUnreachableError`` naming the URL when it does not answer as ComfyUI."""
    async with comfy_client(gpu, url, probe=True) as client:
        return await client.health()


async def swarm_status(gpu: GpuEndpoint, url: str) -> SwarmStatus:
    """SwarmUI's current status (a new session first); a ``ProviderError`` when it does not answer as SwarmUI."""
    async with swarm_client(gpu, url, probe=True) as client:
        return await client.current_status()


def probe_for(gpu: GpuEndpoint, service: GpuBackend) -> Probe:
    """The check that ``service`` answers at a URL, as ``reach`` takes it."""
    check = comfy_health if service == "comfyui" else swarm_status

    async def probe(url: str) -> None:
        await check(gpu, url)

    return probe


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
    except ProviderError as exc:
        return exc
    return None


def _unreachable(service: GpuBackend, url: str, error: Exception) -> str:
    """One sentence naming the URL once: the client's own message when it already says where it failed."""
    text = str(error)
    return text if url in text else f"{SERVICE_NAMES[service]} at {url} is unreachable: {text}"


async def reach(gpu: GpuEndpoint, name: str, service: GpuBackend, probe: Probe) -> Reached:
    """The service's working URL; ``GpuUnreachableError`` (nothing submitted yet) when there is none."""
    instance = await vast_instance(gpu)
    if instance is not None and not instance.is_running:
        raise GpuUnreachableError(
            f"vast.ai instance {instance.id} is not running (status {instance.actual_status!r}"
            f"{', ' + instance.status_msg if instance.status_msg else ''}); start it with "
            f"`reelflow vast start {instance.id} --wait`")
    field = GPU_URL_FIELD[service]
    url: str | None = getattr(gpu, field)
    error = await _probe(probe, url) if url else None
    if url and error is None:
        return Reached(url, instance)
    failures = [_unreachable(service, url, error)] if url and error else []
    if instance is not None:
        try:
            fresh = getattr(await discover_service_urls(instance, gpu.portal_token), field)
        except ReelflowError as exc:
            fresh = None
            failures.append(f"the vast.ai Instance Portal gave no {SERVICE_NAMES[service]} URL: {exc}")
        if fresh and fresh != url:
            try:
                check_service_url(gpu, field, fresh)  # before the portal's URL is sent any credential
            except SpecError as exc:
                raise GpuUnreachableError(f"the vast.ai Instance Portal's {SERVICE_NAMES[service]} URL is refused: "
                                          f"{exc}") from None
            moved = await _probe(probe, fresh)
            if moved is None:
                setattr(gpu, field, fresh)
                await save_endpoint(gpu, name)
                return Reached(fresh, instance, moved_from=url)
            failures.append(("its new URL from the Instance Portal: " if url else "")
                            + _unreachable(service, fresh, moved))
        elif not fresh and not url:
            failures.append(f"the vast.ai Instance Portal lists no {SERVICE_NAMES[service]} URL for instance "
                            f"{instance.id}")
    if not url:
        failures.insert(0, f"no {SERVICE_NAMES[service]} URL is configured in GPU endpoint '{name}'")
    hint = "" if instance is not None else "; check the URL with `reelflow gpu show` and `reelflow gpu check`"
    raise GpuUnreachableError("; ".join(dict.fromkeys(failures)) + hint)
