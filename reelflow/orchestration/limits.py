"""Prefect global concurrency limits: the project's only rate limiter. Provisioned idempotently."""

from __future__ import annotations

import contextlib

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from reelflow.settings import get_settings

FAL_LIMIT = "fal"

_known: set[tuple[str, str]] = set()


def gpu_limit_name(endpoint_key: str) -> str:
    """One limit per GPU endpoint (GpuEndpoint block name), shared by its ComfyUI and SwarmUI: ``gpu-default``."""
    return f"gpu-{endpoint_key}"


async def ensure_limit(name: str, limit: int, *, slot_decay_per_second: float | None = None) -> None:
    """Create the limit, or set its size if it exists (safe to call any number of times)."""
    decay = {} if slot_decay_per_second is None else {"slot_decay_per_second": slot_decay_per_second}
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, **decay))
                return
            except Exception:  # a concurrent creator won the race; fall through to the update
                await client.read_global_concurrency_limit_by_name(name)
        await client.update_global_concurrency_limit(
            name, GlobalConcurrencyLimitUpdate(limit=limit, **decay))


async def create_limit_if_missing(name: str, limit: int) -> None:
    """First use: create the limit with ``limit`` slots, but never resize one that exists (someone may
    have raised it with ``prefect gcl update``). Checked once per process and API."""
    async with get_client() as client:
        key = (str(client.api_url), name)
        if key in _known:
            return
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        _known.add(key)


async def ensure_fal_limit() -> None:
    await create_limit_if_missing(FAL_LIMIT, get_settings().fal_concurrency)


async def provision_limits() -> None:
    """``reelflow setup``: the ``fal`` limit at ``REELFLOW_FAL_CONCURRENCY`` slots (created or resized)."""
    await ensure_limit(FAL_LIMIT, get_settings().fal_concurrency)
