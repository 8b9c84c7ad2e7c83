"""The Prefect API calls behind one concurrency slot (acquire, renew, release), retried within milliseconds.

Prefect's own client waits 2, 4, 8, 16 then 32 s before retrying a 503, which a SQLite Prefect
server answers whenever two writes collide; a job waiting for a slot would sit idle that long.
These calls go to the same REST endpoints with the same settings (URL, key or auth string, TLS)
and retry 502/503 and dropped connections after tens of milliseconds instead.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
from types import TracebackType
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.settings import get_current_settings

RETRY_STATUS = frozenset({502, 503})
ATTEMPTS = 8
FIRST_RETRY_S = 0.02
MAX_RETRY_S = 1.0
LOCKED = 423


def _client() -> httpx.AsyncClient:
    api = get_current_settings().api
    url = str(get_client().api_url)  # PREFECT_API_URL, or the ephemeral server Prefect starts without one
    headers = {}
    if api.auth_string:
        token = base64.b64encode(api.auth_string.get_secret_value().encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif api.key:
        headers["Authorization"] = f"Bearer {api.key.get_secret_value()}"
    verify: ssl.SSLContext | bool = True
    if api.tls_insecure_skip_verify:
        verify = False
    elif api.ssl_cert_file:
        verify = ssl.create_default_context(cafile=api.ssl_cert_file)
    return httpx.AsyncClient(base_url=url.rstrip("/") + "/", headers=headers, verify=verify,
                             timeout=api.request_timeout)


class SlotApi:
    """``async with SlotApi() as api``: one HTTP connection pool to the Prefect API."""

    def __init__(self) -> None:
        self._http = _client()

    async def __aenter__(self) -> SlotApi:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                response = await self._http.post(path, json=body)
            except httpx.TransportError:
                if last:
                    raise
            else:
                if response.status_code not in RETRY_STATUS or last:
                    return response
            await asyncio.sleep(min(MAX_RETRY_S, FIRST_RETRY_S * 2**attempt) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")

    async def acquire(self, name: str, lease_s: float,
                      holder: ConcurrencyLeaseHolder | None = None) -> UUID | float | None:
        """A lease on one slot; else the server's Retry-After (the limit is full); None if no such limit."""
        body: dict[str, Any] = {"names": [name], "slots": 1, "mode": "concurrency", "lease_duration": lease_s}
        if holder is not None:
            body["holder"] = holder.model_dump(mode="json")
        response = await self._post("v2/concurrency_limits/increment-with-lease", body)
        if response.status_code == LOCKED:
            try:
                return float(response.headers.get("Retry-After", 1.0))
            except ValueError:
                return 1.0
        response.raise_for_status()
        answer = response.json()
        return UUID(answer["lease_id"]) if answer.get("limits") else None

    async def renew(self, lease_id: UUID, lease_s: float) -> None:
        response = await self._post(f"v2/concurrency_limits/leases/{lease_id}/renew", {"lease_duration": lease_s})
        response.raise_for_status()

    async def release(self, lease_id: UUID) -> None:
        """Give the slot back (a no-op when the lease already ended or expired)."""
        response = await self._post("v2/concurrency_limits/decrement-with-lease", {"lease_id": str(lease_id)})
        response.raise_for_status()
