"""The GPU settings behind ``/api/gpu/config``: load, merge a change, check the URLs answer, save the Block."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import ValidationError

from blocks.gpu_endpoint import MASK, GpuEndpoint
from reelflow.core.netguard import check_public_url
from reelflow.gpu.endpoint import block_name, find_endpoint, save_endpoint
from reelflow.gpu.mirror import write_mirror
from reelflow.settings import get_settings
from reelflow.web.errors import ApiError, validation_message
from reelflow.web.schemas import GpuConfigIn

PROBE_TIMEOUT_S = 5.0
SECRETS = ("vastai_api_key", "portal_token", "tunnel_auth_header_value", "tunnel_auth_cookie")
NOT_NULL = ("provider", "vastai_api_url", "comfyui_concurrency", "job_deadline_minutes",
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
    values = {name: getattr(block, name) for name in GpuEndpoint.model_fields}
    values.update(changes)
    try:
        return GpuEndpoint(**values)
    except ValidationError as exc:
        field, message = validation_message(exc)
        raise ApiError(422, message, field) from None


def _guard(url: str, field: str, provider: str) -> None:
    """Refuse private addresses unless allowed, or the GPU is declared ``local`` (same machine or LAN)."""
    check_public_url(url, field=field, allow_private=get_settings().allow_private_urls or provider == "local")


async def _call(method: str, url: str, field: str, what: str, headers: dict[str, str]) -> Any:
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, follow_redirects=False) as http:
            resp = await http.request(method, url, headers=headers, json={} if method == "POST" else None)
    except httpx.HTTPError as exc:
        raise ApiError(422, f"{what} did not answer: {type(exc).__name__}", field) from None
    if resp.status_code != 200:
        raise ApiError(422, f"{what} answered HTTP {resp.status_code}", field)
    try:
        return resp.json()
    except ValueError:
        raise ApiError(422, f"{what} did not answer with JSON", field) from None


async def probe_comfyui(url: str, headers: dict[str, str]) -> str:
    what = f"ComfyUI at {url} (GET /system_stats)"
    data = await _call("GET", f"{url}/system_stats", "comfyui_url", what, headers)
    if not isinstance(data, dict) or not isinstance(data.get("system"), dict):
        raise ApiError(422, f"{what} does not look like ComfyUI", "comfyui_url")
    devices = [str(d.get("name", "?")) for d in data.get("devices") or [] if isinstance(d, dict)]
    return f"ComfyUI {data['system'].get('comfyui_version', '?')}" + (f" on {devices[0]}" if devices else "")


async def probe_swarmui(url: str, headers: dict[str, str]) -> str:
    what = f"SwarmUI at {url} (POST /API/GetNewSession)"
    data = await _call("POST", f"{url}/API/GetNewSession", "swarmui_url", what, headers)
    if not isinstance(data, dict) or "session_id" not in data:
        raise ApiError(422, f"{what} does not look like SwarmUI", "swarmui_url")
    return f"SwarmUI {data.get('version', '')}".strip()


async def check_urls(new: GpuEndpoint, body: GpuConfigIn, *, verify: bool) -> dict[str, str]:
    """Check the URLs this request sets: allowed addresses always, and that they answer when ``verify``."""
    sent = body.model_fields_set
    checked: dict[str, str] = {}
    if "vastai_api_url" in sent:
        _guard(new.vastai_api_url, "vastai_api_url", new.provider)
    for field, probe in (("comfyui_url", probe_comfyui), ("swarmui_url", probe_swarmui)):
        url = getattr(new, field)
        if field not in sent or url is None:
            continue
        _guard(url, field, new.provider)
        if verify:
            checked[field] = await probe(url, new.auth_headers())
    return checked


async def save_block(block: GpuEndpoint) -> None:
    """Save the block and its secret-free local note (what model availability reads)."""
    await save_endpoint(block)
    write_mirror(block_name(), block)
