"""What the GPU jobs (ComfyUI, SwarmUI) share: the step on the user's GPU, its input image and its output file.

``gpu_step`` opens the store step under the run lock, takes over an earlier completed attempt's job, reaches the
service and holds a slot of the endpoint's concurrency limit; the job runs inside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.catalog import ModelEntry
from reelflow.core.domain import GPU_URL_FIELD, GpuBackend, MediaRef, ProviderOutput, VideoParams
from reelflow.core.media import probe_video
from reelflow.errors import GpuUnreachableError, ProviderError, SpecError, TransientProviderError
from reelflow.gpu.cost import job_cost
from reelflow.gpu.endpoint import block_name, load_endpoint
from reelflow.gpu.reach import Probe, Reached, probe_for, reach
from reelflow.jobs.step import StepHandle, tracked_step
from reelflow.orchestration.concurrency import Slot, gpu_slot
from reelflow.providers.comfyui.outputs import IMAGE_TYPES, VIDEO_TYPES
from reelflow.runs.lock import run_lock
from reelflow.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class GpuStep:
    """The open step of one GPU job: where it runs, with which slot."""

    model: ModelEntry
    gpu: GpuEndpoint
    step: StepHandle
    reached: Reached
    slot: Slot

    @property
    def deadline_s(self) -> float:
        return self.gpu.job_deadline_minutes * 60.0

    def charge(self, gpu_seconds: float, **detail: Any) -> None:
        """The step's cost at the instance's hourly rate, and its detail (job facts first, then the common ones)."""
        rate = self.reached.instance.dph_total if self.reached.instance else None
        self.step.cost_usd = job_cost(self.model, rate, gpu_seconds)
        self.step.detail = {**detail, "endpoint": self.reached.url, "gpu_seconds": round(gpu_seconds, 3),
                            "usd_per_hour": rate, "slot_wait_s": round(self.slot.waited_s, 3)}


@asynccontextmanager
async def gpu_step(run_id: str, name: str, model: ModelEntry, service: GpuBackend) -> AsyncIterator[GpuStep]:
    block = block_name()
    gpu = await load_endpoint(model.id, block)
    with run_lock(run_id):
        async with tracked_step(run_id, name, service, endpoint=getattr(gpu, GPU_URL_FIELD[service])) as step:
            step.adopt_finished_job()
            reached = await reach_for_step(step, gpu, block, service, probe_for(gpu, service))
            async with gpu_slot(step, gpu, block) as slot:
                yield GpuStep(model, gpu, step, reached, slot)


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


async def read_media(image: MediaRef, field: str = "image") -> bytes:
    """The input's bytes (a stored file or an http(s) URL), at most ``max_input_bytes``; errors name ``field``."""
    limit = get_settings().max_input_bytes
    if image.path:
        try:
            return await asyncio.to_thread(Path(image.path).read_bytes)
        except FileNotFoundError:
            raise SpecError(field, f"input file {image.path} is gone from storage") from None
    if not image.url or not image.url.startswith(("http://", "https://")):
        raise SpecError(field, f"cannot read {image.describe()}: not a local file or an http(s) URL")
    chunks, size = [], 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True) as http, \
            http.stream("GET", image.url, headers=image.headers or {}) as response:
        if response.status_code != 200:
            raise ProviderError(f"reading the input {field} answered HTTP {response.status_code}")
        async for chunk in response.aiter_bytes(1 << 20):
            size += len(chunk)
            if size > limit:
                raise SpecError(field, f"input is larger than {limit} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def scratch_dir(run_id: str) -> Path:
    """Working files of a run; cache_r2 deletes each file once it is stored."""
    return get_settings().home / "work" / run_id


async def write_stream(chunks: AsyncIterator[bytes], dest: Path) -> Path:
    """Stream ``chunks`` into ``dest`` (through a ``.part`` file, so a broken download never looks finished)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    written = 0
    async with await anyio.open_file(part, "wb") as fh:
        async for chunk in chunks:
            written += len(chunk)
            await fh.write(chunk)
    if written == 0:
        part.unlink(missing_ok=True)
        raise ProviderError(f"the output {dest.name} was empty")
    part.replace(dest)
    return dest


async def video_output(path: Path, params: VideoParams | None, job_id: str, cost: Decimal | None) -> ProviderOutput:
    """A scratch file as the task's output, with its real size, frames and fps when it decodes (when it does
    not: the requested ``params``, if any)."""
    content_type = VIDEO_TYPES.get(path.suffix.lower(), "application/octet-stream")
    media = MediaRef(path=str(path), content_type=content_type, filename=path.name)
    try:
        facts = await asyncio.to_thread(probe_video, path)
    except Exception as exc:  # not decodable here (e.g. an animated WebP): keep the requested values
        log.warning("could not read %s as a video (%r); recording the requested size and length", path, exc)
        if params is None:
            return ProviderOutput(media=media, provider_job_id=job_id, cost_usd=cost, scratch=True)
        return ProviderOutput(media=media, width=params.width, height=params.height, fps=params.fps,
                              frames=params.frames, duration_s=params.duration_s, provider_job_id=job_id,
                              cost_usd=cost, scratch=True)
    return ProviderOutput(media=media, width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                          duration_s=facts.duration_s, provider_job_id=job_id, cost_usd=cost, scratch=True)


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


async def image_output(path: Path, job_id: str, cost: Decimal | None) -> ProviderOutput:
    """A scratch image file as the task's output (role ``image``), with its real size."""
    try:
        width, height = await asyncio.to_thread(_image_size, path)
    except OSError as exc:
        raise ProviderError(f"the output {path.name} is not a readable image ({exc})") from None
    media = MediaRef(path=str(path), content_type=IMAGE_TYPES.get(path.suffix.lower(), "image/png"),
                     filename=path.name)
    return ProviderOutput(media=media, role="image", width=width, height=height, provider_job_id=job_id,
                          cost_usd=cost, scratch=True)
