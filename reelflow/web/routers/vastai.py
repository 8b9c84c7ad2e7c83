"""``/api/vastai/instances``: list your vast.ai instances, start and stop one."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from reelflow.errors import ApiError, ProviderError, TransientProviderError, VastApiError
from reelflow.gpu.reach import vast_client
from reelflow.providers.vastai import Instance, VastClient
from reelflow.web.auth import require_token
from reelflow.web.schemas import InstanceList, InstanceOut
from reelflow.web.services.gpu_config import load_block

router = APIRouter(prefix="/api/vastai/instances", tags=["vast.ai"])
InstanceId = Path(ge=1, le=2**53, description="vast.ai instance id.")
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such instance"},
          409: {"description": "No vast.ai API key configured, or the key was rejected"},
          502: {"description": "vast.ai failed"}, 503: {"description": "vast.ai unreachable or rate limited"}}


async def _client() -> tuple[VastClient, int | None]:
    block, _ = await load_block()
    if block.vastai_api_key is None or not block.vastai_api_key.get_secret_value().strip():
        raise ApiError(409, "no vast.ai API key is configured; PUT /api/gpu/config with vastai_api_key",
                       "vastai_api_key")
    client = vast_client(block, timeout=10.0, max_attempts=2, max_backoff_s=2.0)
    return client, block.vastai_instance_id


def _out(instance: Instance, selected: int | None) -> InstanceOut:
    return InstanceOut(selected=instance.id == selected, **instance.model_dump(include=set(InstanceOut.model_fields)))


def _translate(exc: ProviderError | TransientProviderError) -> ApiError:
    if isinstance(exc, VastApiError) and exc.status_code == 404:
        return ApiError(404, str(exc), "instance_id")
    if isinstance(exc, VastApiError) and exc.status_code in (401, 403):
        return ApiError(409, str(exc), "vastai_api_key")
    if isinstance(exc, TransientProviderError):
        return ApiError(503, str(exc))
    return ApiError(502, str(exc))


@router.get("", response_model=InstanceList, responses=ERRORS)
async def list_instances() -> InstanceList:
    """Your instances with state (actual_status), GPU and $/hour (dph_total)."""
    client, selected = await _client()
    try:
        async with client:
            found = await client.list_instances()
    except ProviderError as exc:
        raise _translate(exc) from None
    return InstanceList(instances=[_out(i, selected) for i in found], selected_id=selected)


@router.get("/{instance_id}", response_model=InstanceOut, responses=ERRORS)
async def show(instance_id: int = InstanceId) -> InstanceOut:
    """One instance's state now (what the panel polls after a start or stop until it settles)."""
    client, selected = await _client()
    try:
        async with client:
            instance = await client.show_instance(instance_id)
    except ProviderError as exc:
        raise _translate(exc) from None
    return _out(instance, selected)


async def _set_state(instance_id: int, start: bool) -> InstanceOut:
    client, selected = await _client()
    try:
        async with client:
            await (client.start_instance(instance_id) if start else client.stop_instance(instance_id))
            instance = await client.show_instance(instance_id)
    except ProviderError as exc:
        raise _translate(exc) from None
    return _out(instance, selected)


@router.post("/{instance_id}/start", response_model=InstanceOut, dependencies=[Depends(require_token)],
             responses=ERRORS)
async def start(instance_id: int = InstanceId) -> InstanceOut:
    """Ask vast.ai to start the instance (it may stay in 'scheduling' while the host is busy)."""
    return await _set_state(instance_id, True)


@router.post("/{instance_id}/stop", response_model=InstanceOut, dependencies=[Depends(require_token)],
             responses=ERRORS)
async def stop(instance_id: int = InstanceId) -> InstanceOut:
    """Stop the instance: GPU billing stops; storage is still billed."""
    return await _set_state(instance_id, False)
