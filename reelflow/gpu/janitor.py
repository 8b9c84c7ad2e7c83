"""The GPU janitor's judgement: is the rented GPU busy, since when is it idle, what stopping it saves.

State (when the GPU was last seen busy, past stops) lives in REELFLOW_HOME/gpu/janitor-<instance>.json.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.errors import GpuUnreachableError
from reelflow.gpu.cost import storage_usd_per_hour
from reelflow.gpu.reach import comfy_client, reach, swarm_client
from reelflow.providers.vastai import Instance
from reelflow.settings import get_settings
from reelflow.store.activity import gpu_runs_in_flight, split_stale

BUSY_GPU_UTIL = 10.0


def state_path(instance_id: int) -> Any:
    return get_settings().home / "gpu" / f"janitor-{instance_id}.json"


def load_state(instance_id: int) -> dict[str, Any]:
    try:
        return json.loads(state_path(instance_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save_state(instance_id: int, state: dict[str, Any]) -> None:
    path = state_path(instance_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")


def parse_time(value: Any) -> datetime | None:
    try:
        found = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found is not None and found.tzinfo is None else found


def instance_started(instance: Instance, now: datetime) -> datetime:
    if instance.start_date:
        return datetime.fromtimestamp(instance.start_date, UTC)
    return now - timedelta(minutes=instance.uptime_mins or 0.0)


def idle_since(instance: Instance, now: datetime, *moments: datetime | None) -> datetime:
    """The latest of: instance start, last seen busy, last GPU step finished."""
    return max([instance_started(instance, now), *(m for m in moments if m is not None)])


async def service_busy(gpu: GpuEndpoint, block: str) -> tuple[list[str], bool]:
    """Reasons ComfyUI/SwarmUI are busy, and whether at least one of them answered."""
    reasons: list[str] = []
    answered = False

    async def comfy(url: str) -> None:
        async with comfy_client(gpu, url, probe=True) as client:
            queue = await client.queue_state()
        if queue.busy:
            reasons.append(f"ComfyUI runs {len(queue.running)} and queues {len(queue.pending)} prompt(s)")

    async def swarm(url: str) -> None:
        async with swarm_client(gpu, url, probe=True) as client:
            status = await client.current_status()
        if status.busy:
            reasons.append(f"SwarmUI has {status.live_gens} live and {status.waiting_gens} waiting generation(s)")

    for service, probe in (("comfyui", comfy), ("swarmui", swarm)):
        if getattr(gpu, f"{service}_url") is None:
            continue
        try:
            await reach(gpu, block, service, probe)  # type: ignore[arg-type]
            answered = True
        except GpuUnreachableError:
            continue
    return reasons, answered


def store_busy(now: datetime, window: timedelta) -> tuple[list[str], list[str]]:
    """Reasons from the store (GPU runs in flight), and the stale runs that were ignored."""
    live, stale = split_stale(gpu_runs_in_flight(), now, window)
    reasons = [f"reelflow run {r.run_id} is {r.status} on the GPU" for r in live]
    return reasons, [r.run_id for r in stale]


def savings(instance: Instance, idle_for: timedelta) -> tuple[str, dict[str, Any]]:
    """What stopping saves (the hourly rate) and what the stopped disk still costs."""
    rate = instance.dph_total
    storage = storage_usd_per_hour(instance)
    hours = idle_for.total_seconds() / 3600
    parts = [f"stopped vast.ai instance {instance.id} ({instance.num_gpus or 1}x {instance.gpu_name or 'GPU'}) "
             f"after {hours * 60:.0f} idle minutes"]
    if rate is not None:
        parts.append(f"saves ${rate:.3f}/hour (${rate * 24:.2f}/day) while it stays stopped; "
                     f"the idle stretch cost ${rate * hours:.2f}")
    parts.append(f"its disk still costs ${storage:.4f}/hour (${storage * 24:.2f}/day) until destroyed"
                 if storage is not None else "its disk keeps billing until the instance is destroyed")
    return "; ".join(parts), {"usd_per_hour_saved": rate, "usd_per_day_saved": round(rate * 24, 4) if rate else None,
                              "idle_cost_usd": round(rate * hours, 4) if rate else None,
                              "storage_usd_per_hour": storage}
