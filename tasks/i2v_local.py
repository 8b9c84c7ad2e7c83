"""``i2v_local``: the offline CPU pan-and-zoom renderer as a Prefect task."""

from __future__ import annotations

import asyncio
import threading
import uuid
from decimal import Decimal
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.core.media import probe_video
from reelflow.jobs.step import tracked_step
from reelflow.providers.local_motion import render_kenburns
from reelflow.settings import get_settings
from reelflow.storage.source import url_chunks


def _download(image: MediaRef, target: Path) -> Path:
    if not image.url:
        raise ValueError("i2v_local needs the input image as a file or a URL")
    with url_chunks(image.url, image.headers) as chunks, target.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    return target


@task(name="i2v_local", cache_policy=NO_CACHE, task_run_name="i2v_local-{run_id}")
async def i2v_local(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Render ``params.frames`` frames of eased pan/zoom over ``image`` to an H.264 MP4 (not an AI model)."""
    work = get_settings().home / "work" / run_id
    work.mkdir(parents=True, exist_ok=True)
    out_path = work / f"video-{uuid.uuid4().hex}.mp4"  # a pipeline run renders several videos at once
    async with tracked_step(run_id, "i2v_local", "local", endpoint=model_id) as step:
        source = Path(image.path) if image.path else await asyncio.to_thread(_download, image, work / "input")
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def on_frame(done: int, total: int) -> None:
            if done == total or done % max(1, total // 20) == 0:
                asyncio.run_coroutine_threadsafe(step.progress(done / total, f"rendered {done}/{total} frames"),
                                                 loop)

        assert params.width and params.height and params.fps and params.frames
        try:
            await asyncio.to_thread(render_kenburns, source, out_path, width=params.width,
                                    height=params.height, fps=params.fps, frames=params.frames, seed=params.seed,
                                    progress=on_frame, cancel=cancel)
        except asyncio.CancelledError:
            cancel.set()
            raise
        await step.progress(1.0, "render finished", force=True)
        facts = probe_video(out_path)
        step.cost_usd = Decimal(0)
        step.detail = {"frames": facts.frames, "fps": facts.fps, "width": facts.width, "height": facts.height}
    return ProviderOutput(media=MediaRef(path=str(out_path), content_type="video/mp4", filename="video.mp4"),
                          width=facts.width, height=facts.height, fps=facts.fps, frames=facts.frames,
                          duration_s=facts.duration_s, cost_usd=Decimal(0), scratch=True)
