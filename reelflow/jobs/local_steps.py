"""The offline step jobs: procedural image, Pillow edit, concat and last frame, each one store step.

They run on this machine's CPU (no provider job, nothing paid), in a thread so the event loop stays
free. Outputs are files under the run's scratch folder (``<home>/work/<run id>/``) named after the
store step and the content's hash, so fan-out items and redos never overwrite each other.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from PIL import Image

from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.core.domain import ImageParams, MediaFacts, MediaRef, ProviderOutput
from reelflow.errors import SpecError
from reelflow.jobs.step import StepHandle, tracked_step
from reelflow.providers.local_image import edit_image_locally, procedural_image
from reelflow.providers.local_video import concat_videos, last_frame
from reelflow.settings import get_settings
from reelflow.storage.source import url_chunks

PNG = "image/png"
MP4 = "video/mp4"


def scratch(run_id: str) -> Path:
    work = get_settings().home / "work" / run_id
    work.mkdir(parents=True, exist_ok=True)
    return work


def _file_name(step: StepHandle, digest: str, suffix: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', step.name)}-{digest[:12]}{suffix}"


def _local_model(model_id: str, kind: str) -> ModelEntry:
    model = load_catalog().get(model_id, kind=kind)
    if model.backend != "local":
        raise SpecError("model", f"{model.id} runs on {model.backend}; this step runs local models only")
    return model


def _fetch(ref: MediaRef, target: Path) -> Path:
    """A local path as it is; a URL streamed to ``target``."""
    if ref.path:
        return Path(ref.path)
    if not ref.url:
        raise SpecError("image", "has neither a file path nor a URL to read")
    part = target.with_suffix(target.suffix + ".part")
    with url_chunks(ref.url, ref.headers) as chunks, part.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    part.replace(target)
    return target


def _write_png(run_id: str, step: StepHandle, data: bytes) -> Path:
    path = scratch(run_id) / _file_name(step, hashlib.sha256(data).hexdigest(), ".png")
    path.write_bytes(data)
    return path


def _image_output(path: Path, width: int, height: int) -> ProviderOutput:
    return ProviderOutput(media=MediaRef(path=str(path), content_type=PNG, filename=path.name), role="image",
                          width=width, height=height, cost_usd=Decimal(0), scratch=True)


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


async def run_local_image(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """``generate_image`` offline: the procedural picture (not an AI model) of ``params``."""
    model = _local_model(model_id, "t2i")
    async with tracked_step(run_id, "generate_image", "local", endpoint=model.endpoint) as step:
        data = await asyncio.to_thread(procedural_image, params.prompt, params.width, params.height, params.seed)
        path = _write_png(run_id, step, data)
        step.cost_usd = Decimal(0)
        step.detail = {"path": str(path), "width": params.width, "height": params.height, "seed": params.seed}
        await step.progress(1.0, "image drawn", force=True)
    return _image_output(path, params.width, params.height)


async def run_local_edit(run_id: str, model_id: str, image: MediaRef, params: ImageParams) -> ProviderOutput:
    """``edit_image`` offline: the Pillow filters named in ``params.prompt`` (not an AI model) applied to ``image``."""
    model = _local_model(model_id, "i2i")
    async with tracked_step(run_id, "edit_image", "local", endpoint=model.endpoint) as step:
        source = await asyncio.to_thread(_fetch, image, scratch(run_id) / f"{step.step_id}-edit-input")
        original = source.read_bytes()
        if not image.path:
            source.unlink(missing_ok=True)
        data = await asyncio.to_thread(edit_image_locally, original, params.prompt, params.seed)
        path = _write_png(run_id, step, data)
        width, height = _size(data)
        step.cost_usd = Decimal(0)
        step.detail = {"path": str(path), "width": width, "height": height, "instruction": params.prompt}
        await step.progress(1.0, "image edited", force=True)
    return _image_output(path, width, height)


def _video_output(path: Path, facts: MediaFacts) -> ProviderOutput:
    return ProviderOutput(media=MediaRef(path=str(path), content_type=MP4, filename=path.name), role="video",
                          width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                          duration_s=facts.duration_s, cost_usd=Decimal(0), scratch=True)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def run_concat(run_id: str, clips: Sequence[MediaRef], *, crossfade_s: float = 0.0,
                     size: tuple[int, int] | None = None, fps: float | None = None) -> ProviderOutput:
    """``concat``: ``clips`` joined in order into one MP4 (one size and fps, optional crossfade), with PyAV."""
    if not clips:
        raise SpecError("videos", "concat needs at least one clip")
    async with tracked_step(run_id, "concat", "local", endpoint="reelflow/concat") as step:
        work = scratch(run_id)
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def on_clip(done: int, total: int) -> None:
            asyncio.run_coroutine_threadsafe(step.progress(done / total, f"joined {done}/{total} clips"), loop)

        def join() -> tuple[Path, MediaFacts]:
            files = [_fetch(clip, work / f"{step.step_id}-clip-{index}.mp4") for index, clip in enumerate(clips)]
            joined = work / f"{step.step_id}-concat.mp4"
            try:
                facts = concat_videos(files, joined, crossfade_s=crossfade_s, size=size, fps=fps,
                                      progress=on_clip, cancel=cancel)
            finally:
                for clip, file in zip(clips, files, strict=True):
                    if not clip.path:  # a download of ours, not the caller's file
                        file.unlink(missing_ok=True)
            final = work / _file_name(step, _digest(joined), ".mp4")
            joined.replace(final)
            return final, facts

        try:
            path, facts = await asyncio.to_thread(join)
        except asyncio.CancelledError:
            cancel.set()
            raise
        step.cost_usd = Decimal(0)
        step.detail = {"path": str(path), "clips": len(clips), "crossfade_s": crossfade_s, "frames": facts.frames,
                       "fps": facts.fps, "width": facts.width, "height": facts.height,
                       "duration_s": facts.duration_s}
        await step.progress(1.0, f"joined {len(clips)} clips", force=True)
    return _video_output(path, facts)


async def run_last_frame(run_id: str, video: MediaRef) -> ProviderOutput:
    """The last decoded frame of ``video`` as a PNG (an ``extend`` step's start image); recorded as
    ``<step>:last_frame`` inside a pipeline step, so the step's own video job keeps the step's name."""
    async with tracked_step(run_id, "last_frame", "local", endpoint="reelflow/last-frame", auxiliary=True) as step:
        source = await asyncio.to_thread(_fetch, video, scratch(run_id) / f"{step.step_id}-last-frame-input.mp4")
        try:
            data = await asyncio.to_thread(last_frame, source)
        finally:
            if not video.path:
                source.unlink(missing_ok=True)
        path = _write_png(run_id, step, data)
        width, height = _size(data)
        step.cost_usd = Decimal(0)
        step.detail = {"path": str(path), "width": width, "height": height}
        await step.progress(1.0, "last frame taken", force=True)
    return _image_output(path, width, height)
