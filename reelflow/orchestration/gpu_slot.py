"""One slot of the GPU endpoint's Prefect concurrency limit, held for a job's whole life.

The limit is named after the block (``gpu-default``), shared by ComfyUI and SwarmUI jobs (one GPU), sized by
the block's ``comfyui_concurrency`` and created on first use. The lease id goes into the run's events, so
``reelflow resume`` can free the slot of a killed process at once instead of waiting for its lease to expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.runtime import task_run

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.jobs.step import Step
from reelflow.orchestration.limits import ensure_limit, gpu_limit_name
from reelflow.orchestration.slots import Slot, hold_slot
from reelflow.runs import events

_sizes: dict[str, int] = {}


async def ensure_gpu_limit(name: str, size: int) -> None:
    """Create the limit, or resize it to the block's value; once per process and size."""
    if _sizes.get(name) != size:
        await ensure_limit(name, size)
        _sizes[name] = size


@asynccontextmanager
async def gpu_slot(step: Step, gpu: GpuEndpoint, block: str) -> AsyncIterator[Slot]:
    name = gpu_limit_name(block)
    await ensure_gpu_limit(name, gpu.comfyui_concurrency)

    async def waiting() -> None:
        await step.progress(0.0, f"waiting for a free GPU slot ('{name}' runs {gpu.comfyui_concurrency} "
                            "job(s) at a time)", force=True)

    holder = ConcurrencyLeaseHolder(type="task_run", id=task_run.id) if task_run.id else None
    async with hold_slot(name, holder=holder, on_wait=waiting) as slot:
        events.emit(step.run_id, "slot", f"holding a '{name}' slot after {slot.waited_s:.1f} s", step=step.name,
                    data={"limit": name, "lease_id": str(slot.lease_id)})
        yield slot
