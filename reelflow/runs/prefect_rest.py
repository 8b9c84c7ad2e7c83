"""The two Prefect API calls a submit makes, over plain HTTP: is a deployment ready, and create its flow run.

Importing Prefect takes 1.5-3.5 s on a small machine, and ``reelflow.submit`` in a user's script makes these calls
before anything else there needs Prefect, so they do not import it. Authentication is Prefect's own:
``PREFECT_API_KEY`` (bearer) or ``PREFECT_API_AUTH_STRING`` (basic, ``user:password``).
"""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx

from reelflow.settings import prefect_api_url

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _client(api_url: str) -> httpx.AsyncClient:
    headers = {}
    if key := os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    elif auth := os.environ.get("PREFECT_API_AUTH_STRING"):
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return httpx.AsyncClient(base_url=api_url.rstrip("/") + "/", headers=headers, timeout=TIMEOUT)


async def _deployment(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    """The deployment ``flow/deployment`` as the API describes it, or None when the server has none of that name."""
    response = await client.get(f"deployments/name/{name}")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


async def deployment_ready(name: str) -> bool:
    """True when a Prefect server is configured, has the deployment, and its work pool has a worker online now."""
    if (api_url := prefect_api_url()) is None:
        return False
    async with _client(api_url) as client:
        deployment = await _deployment(client, name)
        if deployment is None or deployment.get("paused") or not (pool_name := deployment.get("work_pool_name")):
            return False
        pool = await client.get(f"work_pools/{pool_name}")
        if pool.status_code == 404:
            return False
        pool.raise_for_status()
        online = await client.post(f"work_pools/{pool_name}/workers/filter",
                                   json={"workers": {"status": {"any_": ["ONLINE"]}}, "limit": 1})
        online.raise_for_status()
    # the pool's READY status lags behind its workers: a pool whose last worker stopped stays READY for a while
    return pool.json().get("status") == "READY" and bool(online.json())


class DeploymentNotFoundError(LookupError):
    """The server has no deployment of that name."""


async def create_flow_run(name: str, *, parameters: dict[str, Any], tags: list[str], idempotency_key: str) -> str:
    """Create a Scheduled flow run of the deployment ``name`` (as ``run_deployment(..., timeout=0)`` does outside a
    flow); returns its id. The same ``idempotency_key`` returns the flow run created before. Raises
    ``DeploymentNotFoundError``, ``httpx.HTTPStatusError`` or ``httpx.TransportError``."""
    api_url = prefect_api_url()
    if api_url is None:
        raise DeploymentNotFoundError(name)
    async with _client(api_url) as client:
        deployment = await _deployment(client, name)
        if deployment is None:
            raise DeploymentNotFoundError(name)
        response = await client.post(f"deployments/{deployment['id']}/create_flow_run", json={
            "parameters": parameters, "tags": tags, "idempotency_key": idempotency_key})
        response.raise_for_status()
        return str(response.json()["id"])


async def flow_run_states(flow_run_ids: list[str]) -> dict[str, str | None]:
    """The state type (``SCHEDULED``, ``CRASHED``, ...) of each flow run, in one request; a flow run the server does
    not have is left out. Raises ``httpx.HTTPStatusError`` or ``httpx.TransportError``."""
    api_url = prefect_api_url()
    if api_url is None or not flow_run_ids:
        return {}
    async with _client(api_url) as client:
        response = await client.post("flow_runs/filter", json={
            "flow_runs": {"id": {"any_": flow_run_ids}}, "limit": len(flow_run_ids)})
        response.raise_for_status()
        return {str(found["id"]): (found.get("state") or {}).get("type") for found in response.json()}
