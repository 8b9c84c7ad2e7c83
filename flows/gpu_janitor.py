"""``gpu_janitor``: stop the configured vast.ai instance after N idle minutes (schedule it every few minutes).

Idle means: ComfyUI runs and queues nothing, SwarmUI has no generation, no reelflow GPU run is in flight and
no job holds a GPU slot; idle since the latest of instance start, last GPU step finished, last seen busy.
Before stopping, the janitor takes every GPU slot (so no reelflow job starts meanwhile) and looks once more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger

from reelflow.gpu.cost import storage_usd_per_hour
from reelflow.gpu.endpoint import block_name, find_endpoint
from reelflow.gpu.janitor import (
    BUSY_GPU_UTIL,
    idle_since,
    load_state,
    parse_time,
    save_state,
    savings,
    service_busy,
    store_busy,
)
from reelflow.gpu.reach import vast_client
from reelflow.orchestration.concurrency import gpu_limit_name, hold_every_slot
from reelflow.store.activity import last_gpu_step_finish


def _report(action: str, reason: str, **extra: Any) -> dict[str, Any]:
    get_run_logger().info("%s: %s", action, reason)
    return {"action": action, "reason": reason, **extra}


@flow(name="gpu_janitor", log_prints=True)
async def gpu_janitor(idle_minutes: int | None = None) -> dict[str, Any]:
    """Stop the GPU endpoint's vast.ai instance once idle for ``idle_minutes`` (default: the block's
    ``idle_stop_minutes``); never while a job runs. Returns what it did and why."""
    block = block_name()
    gpu = await find_endpoint(block)
    if gpu is None or gpu.provider != "vastai" or gpu.vastai_instance_id is None or gpu.vastai_api_key is None:
        return _report("none", "no vast.ai instance is configured (`reelflow gpu set --provider vastai ...`)")
    limit = timedelta(minutes=idle_minutes if idle_minutes is not None else gpu.idle_stop_minutes)
    instance_id = gpu.vastai_instance_id
    async with vast_client(gpu) as vast:
        instance = await vast.show_instance(instance_id)
        if not instance.is_running:
            storage = storage_usd_per_hour(instance)
            return _report("none", f"instance {instance_id} is {instance.actual_status!r}; nothing to stop",
                           instance_id=instance_id, storage_usd_per_hour=storage)
        now = datetime.now(UTC)
        state = load_state(instance_id)
        window = timedelta(minutes=gpu.job_deadline_minutes) + limit
        reasons, stale = store_busy(now, window)
        services, answered = await service_busy(gpu, block)
        reasons += services
        if not answered and (instance.gpu_util or 0.0) >= BUSY_GPU_UTIL:
            reasons.append(f"ComfyUI/SwarmUI do not answer and the GPU is {instance.gpu_util:.0f}% busy")
        if stale:
            get_run_logger().warning("ignoring GPU runs silent for over %s (their process died): %s", window,
                                     ", ".join(stale))
        if reasons:
            save_state(instance_id, {**state, "last_busy": now.isoformat()})
            return _report("busy", "; ".join(reasons), instance_id=instance_id)
        endpoints = [url for url in (gpu.comfyui_url, gpu.swarmui_url) if url]
        since = idle_since(instance, now, parse_time(state.get("last_busy")), last_gpu_step_finish(endpoints))
        idle_for = now - since
        if idle_for < limit:
            return _report("idle", f"idle for {idle_for.total_seconds() / 60:.1f} of {limit.total_seconds() / 60:g} "
                           "minutes", instance_id=instance_id, idle_minutes=round(idle_for.total_seconds() / 60, 2))
        async with hold_every_slot(gpu_limit_name(block)) as free:
            last_look, _ = await service_busy(gpu, block) if free else (["a reelflow job holds a GPU slot"], True)
            if not free or last_look:
                save_state(instance_id, {**state, "last_busy": now.isoformat()})
                return _report("busy", "; ".join(last_look), instance_id=instance_id)
            await vast.stop_instance(instance_id)
    message, money = savings(instance, idle_for)
    save_state(instance_id, {**state, "last_stop": now.isoformat(), "stops": int(state.get("stops", 0)) + 1})
    return _report("stopped", message, instance_id=instance_id,
                   idle_minutes=round(idle_for.total_seconds() / 60, 2), **money)
