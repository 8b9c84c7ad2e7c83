"""The pipeline step kinds that have no task of their own yet: local text-to-image, image edits, prompt rewrites,
a video's last frame and concatenation (these two on the CPU with PyAV). Each is one Prefect task recorded (by
``tracked_step``) into the pipeline step being run; the pipeline flow names each task run after its step."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import ImageParams, MediaRef, ProviderOutput
from reelflow.core.inputs import inspect_image
from reelflow.jobs.step import tracked_step
from reelflow.providers import local_video
from reelflow.settings import get_settings
from reelflow.storage.source import url_chunks


@task(name="generate_image_local", cache_policy=NO_CACHE)
async def generate_image_local(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """A local text-to-image stand-in (not an AI model)."""
    from reelflow.jobs.local_steps import run_local_image

    return await run_local_image(run_id, model_id, params)


@task(name="edit_image", cache_policy=NO_CACHE)
async def edit_image(run_id: str, model_id: str, backend: str, image: MediaRef, params: ImageParams) -> ProviderOutput:
    """An image and an instruction (``params.prompt``) to a new image: locally, or on fal."""
    if backend == "local":
        from reelflow.jobs.local_steps import run_local_edit

        return await run_local_edit(run_id, model_id, image, params)
    from reelflow.jobs.fal import run_edit_image  # type: ignore[attr-defined]

    return await run_edit_image(run_id, model_id, image, params)


@task(name="enhance_prompt", cache_policy=NO_CACHE)
async def enhance_prompt(run_id: str, model_id: str, prompt: str, style: str | None, seed: int | None) -> str:
    """A prompt rewritten by a language model (or the local template)."""
    from reelflow.jobs.text import run_enhance_prompt

    return await run_enhance_prompt(run_id, model_id, prompt, style=style, seed=seed)


def _work_dir(run_id: str) -> Path:
    work = get_settings().home / "work" / run_id
    work.mkdir(parents=True, exist_ok=True)
    return work


def _local(media: MediaRef, work: Path) -> Path:
    """A stored object as a local file: its own path, or a download of its (presigned) URL."""
    if media.path:
        return Path(media.path)
    if not media.url:
        raise ValueError(f"cannot read {media.describe()}")
    target = work / f"in-{uuid.uuid4().hex}{Path(media.filename or '').suffix or '.bin'}"
    with url_chunks(media.url, media.headers) as chunks, target.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    return target


@task(name="last_frame", cache_policy=NO_CACHE)
async def last_frame(run_id: str, video: MediaRef) -> ProviderOutput:
    """A video's last frame as a PNG: the start of the next clip of an extend step."""
    work = _work_dir(run_id)
    async with tracked_step(run_id, "last_frame", "local") as step:
        data = await asyncio.to_thread(local_video.last_frame, await asyncio.to_thread(_local, video, work))
        out = work / f"frame-{uuid.uuid4().hex}.png"
        out.write_bytes(data)
        facts = inspect_image(data, out.name)
        step.cost_usd = 0.0
    return ProviderOutput(media=MediaRef(path=str(out), content_type="image/png", filename="frame.png"), role="image",
                          width=facts.width, height=facts.height, cost_usd=0.0, scratch=True)


@task(name="concat", cache_policy=NO_CACHE)
async def concat(run_id: str, clips: Sequence[MediaRef], crossfade_s: float, size: tuple[int, int] | None,
                 fps: float | None) -> ProviderOutput:
    """Clips joined into one MP4 (sizes and frame rates made equal, optionally crossfaded), on the CPU."""
    work = _work_dir(run_id)
    async with tracked_step(run_id, "concat", "local") as step:
        paths = [await asyncio.to_thread(_local, clip, work) for clip in clips]
        out = work / f"concat-{uuid.uuid4().hex}.mp4"
        cancel = threading.Event()
        try:
            facts = await asyncio.to_thread(local_video.concat_videos, paths, out, crossfade_s=crossfade_s,
                                            size=size, fps=fps, cancel=cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        step.cost_usd = 0.0
        step.detail = {"clips": len(paths), "frames": facts.frames, "duration_s": facts.duration_s}
    return ProviderOutput(media=MediaRef(path=str(out), content_type="video/mp4", filename="video.mp4"),
                          width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                          duration_s=facts.duration_s, cost_usd=0.0, scratch=True)
