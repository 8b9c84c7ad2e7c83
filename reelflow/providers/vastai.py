"""Async client for the vast.ai REST API (v0) and service-URL discovery through the Instance Portal.

The API key travels only in the ``Authorization`` header; it never appears in reprs, logs or errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from reelflow.errors import ProviderError, VastApiError, VastTransientError

DEFAULT_API_URL = "https://console.vast.ai/api/v0"
RETRY_STATUSES = frozenset({429, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


class PortBinding(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    host_ip: str | None = Field(default=None, alias="HostIp")
    host_port: str = Field(alias="HostPort")

    @field_validator("host_port", mode="before")
    @classmethod
    def _port_as_str(cls, value: Any) -> str:
        return str(value)


class InstanceFacts(BaseModel):
    """What a person is shown of a vast.ai instance: its state, GPU and price."""

    id: int
    actual_status: str | None = None
    intended_status: str | None = None
    status_msg: str | None = None
    gpu_name: str | None = None
    num_gpus: int | None = None
    gpu_util: float | None = None
    dph_total: float | None = Field(default=None, description="Dollars per hour, all included.")


class Instance(InstanceFacts):
    """The fields of a vast.ai instance that reelflow uses; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    storage_cost: float | None = Field(default=None, description="Disk price, $ per GB-month.")
    storage_total_cost: float | None = Field(default=None, description="Disk price, $ per hour, when given.")
    disk_space: float | None = Field(default=None, description="Disk size, GB.")
    start_date: float | None = Field(default=None, description="Unix time the instance last started.")
    public_ipaddr: str | None = None
    ports: dict[str, list[PortBinding]] = Field(default_factory=dict)
    label: str | None = None
    uptime_mins: float | None = None

    @field_validator("ports", mode="before")
    @classmethod
    def _ports_dict(cls, value: Any) -> dict[str, list[Any]]:
        if not isinstance(value, dict):
            return {}
        return {key: [b for b in (bindings or []) if isinstance(b, dict)] for key, bindings in value.items()}

    @field_validator("public_ipaddr", mode="before")
    @classmethod
    def _strip_ip(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @property
    def is_running(self) -> bool:
        return self.actual_status == "running"

    def host_port(self, container_port: int) -> str | None:
        bindings = self.ports.get(f"{container_port}/tcp") or []
        return bindings[0].host_port if bindings else None

    def direct_url(self, container_port: int, scheme: str = "http") -> str | None:
        port = self.host_port(container_port)
        return f"{scheme}://{self.public_ipaddr}:{port}" if port and self.public_ipaddr else None


@dataclass(frozen=True)
class PortLayout:
    """Where services live: internal ports (quick-tunnel targets) and external container ports."""

    portal: int = 1111
    comfyui_internal: int = 18188
    comfyui_external: int = 8188
    swarmui_internal: int = 17865
    swarmui_external: int = 7865


class ServiceUrls(BaseModel):
    model_config = ConfigDict(frozen=True)

    comfyui_url: str | None = None
    swarmui_url: str | None = None
    portal_url: str | None = None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _secret(value: str | SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class VastClient:
    """``async with VastClient(key) as vast: await vast.list_instances()``.

    429/502/503/504 and transport failures are retried up to ``max_attempts`` times, waiting
    ``Retry-After`` (or an exponential backoff) capped at ``max_backoff_s``. A 429 about
    ``search_quota_exceeded`` is a daily quota and is never retried.
    """

    def __init__(self, api_key: str | SecretStr, *, base_url: str = DEFAULT_API_URL, timeout: float = 30.0,
                 max_attempts: int = 5, max_backoff_s: float = 30.0, sleep: Sleep = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        key = _secret(api_key)
        if not key:
            raise ValueError("vast.ai API key is empty")
        self._key = SecretStr(key)
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"},
                                       timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                       transport=transport)

    def __repr__(self) -> str:
        return f"VastClient(base_url={self.base_url!r}, api_key='********')"

    async def __aenter__(self) -> VastClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_instances(self) -> list[Instance]:
        data = await self._request("GET", "/instances/", params={"owner": "me"})
        return [Instance.model_validate(item) for item in data.get("instances") or []]

    async def show_instance(self, instance_id: int) -> Instance:
        data = await self._request("GET", f"/instances/{instance_id}/", params={"owner": "me"})
        found = data.get("instances")
        if isinstance(found, list):
            found = found[0] if found else None
        if not found:
            raise VastApiError(404, f"instance {instance_id} not found for this API key")
        return Instance.model_validate(found)

    async def start_instance(self, instance_id: int) -> None:
        await self._set_state(instance_id, "running")

    async def stop_instance(self, instance_id: int) -> None:
        await self._set_state(instance_id, "stopped")

    async def _set_state(self, instance_id: int, state: str) -> None:
        data = await self._request("PUT", f"/instances/{instance_id}/", json={"state": state})
        if data.get("success") is False:
            raise VastApiError(200, f"cannot set instance {instance_id} to {state}: {self._detail(data)}")

    async def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        retrying = AsyncRetrying(retry=retry_if_exception_type(VastTransientError), wait=self._wait,
                                 stop=stop_after_attempt(self.max_attempts), sleep=self._sleep, reraise=True)
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, **kwargs)
        raise AssertionError("unreachable")

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, VastTransientError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_backoff_s)
        backoff = min(self.max_backoff_s, 0.5 * 2 ** (state.attempt_number - 1))
        return backoff * random.uniform(0.8, 1.0)

    async def _once(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{method} {path}"
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise VastTransientError(f"vast.ai unreachable ({where}): {type(exc).__name__}") from None
        if resp.status_code in RETRY_STATUSES:
            if resp.status_code == 429 and "search_quota_exceeded" in resp.text:
                raise VastApiError(429, f"search_quota_exceeded ({where}): daily quota used up, not retrying")
            raise VastTransientError(f"vast.ai HTTP {resp.status_code} ({where})",
                                     _parse_retry_after(resp.headers.get("Retry-After")))
        try:
            data = resp.json()
        except ValueError:
            data = {"msg": resp.text[:200]}
        if resp.status_code in (401, 403):
            raise VastApiError(resp.status_code, f"the API key was rejected ({where})")
        if resp.status_code >= 400:
            raise VastApiError(resp.status_code, f"{where}: {self._detail(data)}")
        return data if isinstance(data, dict) else {}

    def _detail(self, data: Any) -> str:
        text = str(data.get("msg") or data.get("error") or data) if isinstance(data, dict) else str(data)
        return text.replace(self._key.get_secret_value(), "********")[:300]


def _tunnel_port(target_url: str) -> int | None:
    try:
        return urlsplit(target_url).port
    except ValueError:
        return None


async def _quick_tunnels(portal_url: str, token: str | None, timeout_s: float,
                         transport: httpx.AsyncBaseTransport | None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with httpx.AsyncClient(timeout=timeout_s, transport=transport) as http:
            resp = await http.get(f"{portal_url}/get-all-quick-tunnels", headers=headers)
    except httpx.HTTPError:
        return []
    if resp.status_code in (401, 403):
        raise ProviderError(f"the Instance Portal at {portal_url} rejected the token "
                            f"(HTTP {resp.status_code}); set portal_token to the instance's WEB_PASSWORD")
    try:
        data = resp.json() if resp.status_code == 200 else []
    except ValueError:
        return []
    return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []


async def discover_service_urls(instance: Instance, token: str | SecretStr | None, *,
                                layout: PortLayout | None = None, scheme: str = "http",
                                timeout_s: float = 10.0,
                                transport: httpx.AsyncBaseTransport | None = None) -> ServiceUrls:
    """Quick-tunnel URLs from the Instance Portal, else the direct port mappings of the instance."""
    layout = layout or PortLayout()
    if not instance.is_running:
        raise ProviderError(f"vast.ai instance {instance.id} is not running (actual_status="
                            f"{instance.actual_status!r}, status_msg={instance.status_msg!r})")
    portal_url = instance.direct_url(layout.portal, scheme)
    tunnels = await _quick_tunnels(portal_url, _secret(token), timeout_s, transport) if portal_url else []

    def pick(internal: int, external: int) -> str | None:
        for tunnel in tunnels:
            url = tunnel.get("tunnelUrl")
            if url and _tunnel_port(str(tunnel.get("targetUrl", ""))) in (internal, external):
                return str(url).rstrip("/")
        return instance.direct_url(external, scheme)

    return ServiceUrls(comfyui_url=pick(layout.comfyui_internal, layout.comfyui_external),
                       swarmui_url=pick(layout.swarmui_internal, layout.swarmui_external),
                       portal_url=portal_url)
