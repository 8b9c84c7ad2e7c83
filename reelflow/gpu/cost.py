"""GPU time and money: seconds a job held the GPU, its cost at the instance's rate, what a stopped disk costs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from reelflow.core.catalog import ModelEntry
from reelflow.providers.vastai import Instance

HOURS_PER_MONTH = 730.0


def execution_seconds(entry: dict[str, Any]) -> float | None:
    """From ComfyUI's history: the first to the last status message timestamp (execution_start -> end)."""
    stamps = [data.get("timestamp") for _, data in (entry.get("status") or {}).get("messages") or []
              if isinstance(data, dict)]
    stamps = [s for s in stamps if isinstance(s, int | float)]
    return (max(stamps) - min(stamps)) / 1000.0 if len(stamps) >= 2 else None


def job_cost(model: ModelEntry, usd_per_hour: float | None, gpu_seconds: float) -> Decimal | None:
    """GPU seconds x the instance's $/hour; None when the rate is unknown (a local GPU, a plain URL)."""
    return model.price.estimate(gpu_usd_per_hour=usd_per_hour, gpu_seconds=gpu_seconds)


def storage_usd_per_hour(instance: Instance) -> float | None:
    """What the instance's disk costs per hour while it is stopped (vast.ai keeps billing storage)."""
    if instance.storage_total_cost is not None:
        return instance.storage_total_cost
    if instance.storage_cost is not None and instance.disk_space:
        return round(instance.storage_cost * instance.disk_space / HOURS_PER_MONTH, 6)
    return None
