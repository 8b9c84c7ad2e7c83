"""``i2v_swarmui``: Wan 2.2 image-to-video on the user's GPU through SwarmUI.

SwarmUI has no job id, so reelflow makes one (stored before the request is sent) and tags the request with
it (``extra_metadata.job_id``). A resumed step looks for the tagged output instead of generating again; a job
that is provably gone is generated again only when the block allows it. Cancelling interrupts the session.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ProviderError
from reelflow.gpu.cost import job_cost
from reelflow.gpu.endpoint import block_name, load_endpoint
from reelflow.jobs.gpu import finished_job, reach_for_step, video_output
from reelflow.jobs.gpu_inputs import read_media, scratch_dir
from reelflow.jobs.step import StepHandle, tracked_step
from reelflow.orchestration.concurrency import gpu_slot
from reelflow.providers.swarmui import SwarmClient
from reelflow.runs.lock import run_lock
from reelflow.settings import get_settings

STEP = "i2v_swarmui"
log = logging.getLogger(__name__)


async def _generate(swarm: SwarmClient, step: StepHandle, run_id: str, image: MediaRef, params: VideoParams,
                    *, allow_resubmit: bool, deadline_s: float) -> Path:
    async def progress(overall: float, current: float) -> None:
        await step.progress(0.05 + 0.9 * overall, f"SwarmUI {overall:.0%}")

    folder = scratch_dir(run_id)
    if step.provider_job_id:
        step.log(f"resuming SwarmUI job {step.provider_job_id}: looking for its tagged output, not generating again")
        ref = await swarm.recover(step.provider_job_id, time.monotonic() + deadline_s)
        if ref is not None:
            return await swarm.download(ref, folder / f"{step.provider_job_id}-{Path(ref).name}")
        if not allow_resubmit:
            raise ProviderError(f"SwarmUI job {step.provider_job_id} was lost (nothing runs and no output carries "
                                "its id). Not generating again: that would be a second paid GPU job; allow it "
                                "with `reelflow gpu set --allow-resubmit-lost-jobs`, or run again with --force")
        step.log(f"SwarmUI job {step.provider_job_id} was lost; generating again (allow_resubmit_lost_jobs is on)")
    job_id = f"{run_id}-{uuid.uuid4().hex[:12]}"
    step.record_job(job_id, swarm.base_url)
    output = await swarm.generate_video(job_id, await read_media(image), params, on_progress=progress,
                                        download_dir=folder, allow_resubmit=allow_resubmit, deadline_s=deadline_s)
    assert output.media.path is not None
    return Path(output.media.path)


@task(name="i2v_swarmui", cache_policy=NO_CACHE, task_run_name="i2v_swarmui-{run_id}")
async def i2v_swarmui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Generate (or recover) the video on the configured SwarmUI and return it as a scratch file."""
    model = load_catalog().get(model_id, kind="i2v")
    block = block_name()
    gpu = await load_endpoint(model.id, block)
    headers = gpu.auth_headers()
    poll_s = get_settings().swarmui_poll_interval_s

    async def probe(url: str) -> None:
        async with SwarmClient(url, headers=headers, timeout=15.0) as swarm:
            await swarm.current_status()

    with run_lock(run_id):
        async with tracked_step(run_id, STEP, "swarmui", endpoint=gpu.swarmui_url) as step:
            if not step.provider_job_id and (earlier := finished_job(run_id, STEP)):
                step.record_job(earlier)
            reached = await reach_for_step(step, gpu, block, "swarmui", probe)
            async with gpu_slot(step, gpu, block) as slot, \
                    SwarmClient(reached.url, headers=headers, poll_interval_s=poll_s) as swarm:
                started = time.monotonic()
                try:
                    path = await _generate(swarm, step, run_id, image, params,
                                           allow_resubmit=gpu.allow_resubmit_lost_jobs,
                                           deadline_s=gpu.job_deadline_minutes * 60.0)
                except asyncio.CancelledError:
                    await _interrupt(swarm, step)
                    raise
                gpu_seconds = time.monotonic() - started
            rate = reached.instance.dph_total if reached.instance else None
            step.cost_usd = job_cost(model, rate, gpu_seconds)
            step.detail = {"job_id": step.provider_job_id, "endpoint": reached.url, "output": path.name,
                           "gpu_seconds": round(gpu_seconds, 3), "usd_per_hour": rate,
                           "slot_wait_s": round(slot.waited_s, 3)}
            await step.progress(1.0, f"downloaded {path.name}", force=True)
    return await video_output(path, params, step.provider_job_id or "", step.cost_usd)


async def _interrupt(swarm: SwarmClient, step: StepHandle) -> None:
    try:
        async with asyncio.timeout(15.0):
            await asyncio.shield(swarm.interrupt())
    except BaseException as exc:  # the run is being cancelled whatever happens here
        log.warning("could not interrupt SwarmUI: %r", exc)
        return
    step.log("cancelled: SwarmUI generation interrupted (InterruptAll for this session)")
