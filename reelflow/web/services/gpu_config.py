"""The GPU settings behind ``/api/gpu/config``: load, merge a change, check the URLs answer, save the Block."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from blocks.gpu_endpoint import MASK, GpuEndpoint
from reelflow.core.domain import GPU_URL_FIELD
from reelflow.core.netguard import check_public_url
from reelflow.errors import ApiError, ReelflowError
from reelflow.gpu.endpoint import find_endpoint, save_endpoint
from reelflow.gpu.reach import comfy_health, swarm_status
from reelflow.settings import get_settings
from reelflow.web.errors import validation_message
from reelflow.web.schemas import GpuConfigIn

SECRETS = ("vastai_api_key", "portal_token", "tunnel_auth_header_value", "tunnel_auth_cookie")
NOT_NULL = ("provider", "comfyui_concurrency", "job_deadline_minutes",
            "allow_resubmit_lost_jobs", "idle_stop_minutes")


async def load_block() -> tuple[GpuEndpoint, bool]:
    """The configured GpuEndpoint block, or the defaults (and False) when none is saved yet."""
    found = await find_endpoint()
    return (found, True) if found is not None else (GpuEndpoint(), False)


def config_out(block: GpuEndpoint, saved: bool, checked: dict[str, str] | None = None) -> dict[str, Any]:
    """Every field with secrets masked, plus the original system's ``gpu_provider`` name."""
    return {**block.masked(), "gpu_provider": block.provider, "block_name": get_settings().gpu_block,
            "saved": saved, "checked": checked or {}}


def merge(block: GpuEndpoint, body: GpuConfigIn) -> GpuEndpoint:
    changes = body.model_dump(exclude_unset=True)
    alias = changes.pop("gpu_provider", None)
    if alias is not None:
        if changes.get("provider") not in (None, alias):
            raise ApiError(422, "gpu_provider and provider disagree; send one of them", "gpu_provider")
        changes["provider"] = alias
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            del changes[name]
    for name in SECRETS:
        if changes.get(name) == MASK:
            del changes[name]
        elif name in changes and not (changes[name] or "").strip():
            changes[name] = None  # an empty secret clears it
    if "vastai_api_url" in changes and changes["vastai_api_url"] != block.vastai_api_url:
        raise ApiError(422, "vastai_api_url cannot be changed over the REST API (the vast.ai key is sent there); "
                       "use `reelflow gpu set --vastai-api-url URL` or the GpuEndpoint Block", "vastai_api_url")
    changes.pop("vastai_api_url", None)
    values = {name: getattr(block, name) for name in GpuEndpoint.model_fields}
    values.update(changes)
    try:
        return GpuEndpoint(**values).with_origin_bound_secrets(block, set(changes))
    except ValidationError as exc:
        field, message = validation_message(exc)
        raise ApiError(422, message, field) from None


def _guard(url: str, field: str, provider: str) -> None:
    """Refuse private addresses unless allowed, or the GPU is declared ``local`` (same machine or LAN)."""
    check_public_url(url, field=field, allow_private=get_settings().allow_private_urls or provider == "local")


async def probe_comfyui(block: GpuEndpoint, url: str) -> str:
    stats = await comfy_health(block, url)
    devices = [str(d.get("name", "?")) for d in stats.get("devices") or [] if isinstance(d, dict)]
    return f"ComfyUI {stats['system'].get('comfyui_version', '?')}" + (f" on {devices[0]}" if devices else "")


async def probe_swarmui(block: GpuEndpoint, url: str) -> str:
    status = await swarm_status(block, url)
    return f"SwarmUI answered ({status.live_gens} live, {status.waiting_gens} waiting generation(s))"


PROBES = {"comfyui": probe_comfyui, "swarmui": probe_swarmui}


async def check_urls(new: GpuEndpoint, body: GpuConfigIn, *, verify: bool) -> dict[str, str]:
    """Check the URLs this request sets: allowed addresses always, and that they answer when ``verify``."""
    sent = body.model_fields_set
    checked: dict[str, str] = {}
    for service, field in GPU_URL_FIELD.items():
        url = getattr(new, field)
        if field not in sent or url is None:
            continue
        _guard(url, field, new.provider)
        if verify:
            try:
                checked[field] = await PROBES[service](new, url)
            except ReelflowError as exc:
                raise ApiError(422, f"{service} at {url} did not answer: {exc}", field) from None
    return checked


async def save_block(block: GpuEndpoint) -> None:
    """Save the block and its secret-free local note (what model availability reads)."""
    await save_endpoint(block)
