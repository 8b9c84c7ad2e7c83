"""Shared by the GPU tasks (``i2v_comfyui``, ``i2v_swarmui``): the endpoint, earlier attempts, the output."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.domain import GpuBackend, MediaRef, ProviderOutput, VideoParams
from reelflow.core.media import probe_video
from reelflow.errors import TransientProviderError
from reelflow.gpu.errors import GpuUnreachableError
from reelflow.gpu.reach import Probe, Reached, reach
from reelflow.jobs.step import StepHandle
from reelflow.providers.comfyui.outputs import VIDEO_TYPES
from reelflow.store import repo

log = logging.getLogger(__name__)


def finished_job(run_id: str, step_name: str) -> str | None:
    """The job of an earlier completed attempt of this step whose output was not stored yet (a crash in between)."""
    done = [s for s in repo.get_run(run_id).steps
            if s.name == step_name and s.status == "completed" and s.provider_job_id]
    return done[-1].provider_job_id if done else None


async def reach_for_step(step: StepHandle, gpu: GpuEndpoint, block: str, service: GpuBackend, probe: Probe) -> Reached:
    """Reach the service. Unreachable before anything was submitted -> ``GpuUnreachableError`` (fallback may
    follow, noted in the step); unreachable while a stored job may still run there -> a plain transient error."""
    try:
        reached = await reach(gpu, block, service, probe)
    except GpuUnreachableError as exc:
        if step.provider_job_id:
            raise TransientProviderError(f"{exc}; job {step.provider_job_id} may still be running there, so it "
                                         "is not submitted elsewhere: resume the run once the GPU answers") from None
        step.detail = {"unreachable": str(exc), "fallback_model": gpu.fallback_model}
        raise
    if reached.moved_from is not None:
        step.log(f"{service} moved from {reached.moved_from} to {reached.url} (found through the vast.ai portal); "
                 "the GPU endpoint block was updated")
    return reached


async def video_output(path: Path, params: VideoParams, job_id: str, cost: float | None) -> ProviderOutput:
    """A scratch file as the task's output, with its real size, frames and fps when it decodes."""
    content_type = VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream")
    media = MediaRef(path=str(path), content_type=content_type, filename=path.name)
    try:
        facts = await asyncio.to_thread(probe_video, path)
    except Exception as exc:  # not decodable here (e.g. an animated WebP): keep the requested values
        log.warning("could not read %s as a video (%r); recording the requested size and length", path, exc)
        return ProviderOutput(media=media, width=params.width, height=params.height, fps=params.fps,
                              frames=params.frames, duration_s=params.duration_s, provider_job_id=job_id,
                              cost_usd=cost, scratch=True)
    return ProviderOutput(media=media, width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                          duration_s=facts.duration_s, provider_job_id=job_id, cost_usd=cost, scratch=True)
