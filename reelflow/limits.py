"""Prefect global concurrency limits: the project's only rate limiter. Provisioned idempotently."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectNotFound

FAL_LIMIT = "fal"


def gpu_limit_name(endpoint_key: str) -> str:
    """One limit per GPU endpoint, e.g. ``comfyui-default``."""
    return f"comfyui-{endpoint_key}"


async def ensure_limit(name: str, limit: int, *, slot_decay_per_second: float | None = None) -> None:
    """Create the limit, or set its size if it exists (safe to call any number of times)."""
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=slot_decay_per_second))
                return
            except Exception:  # a concurrent creator won the race; fall through to the update
                await client.read_global_concurrency_limit_by_name(name)
        await client.update_global_concurrency_limit(
            name, GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=slot_decay_per_second))
