"""``i2v_fal``: image-to-video on fal.ai (Wan 2.5, Kling, Veo)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import SpecError
from reelflow.jobs.fal import FalJob, retry_transient, run_fal_job
from reelflow.providers.fal import build_arguments, image_reference, parse_video_output


async def image_url(image: MediaRef) -> str:
    """An http(s) URL passes through; a local file goes inline as a data URI, or through fal's upload if large."""
    if image.url and image.url.startswith(("https://", "http://")):
        return image.url
    if image.path:
        data = await asyncio.to_thread(Path(image.path).read_bytes)
        return await image_reference(data, image.content_type, file_name=Path(image.path).name)
    raise SpecError("image", f"cannot send {image.describe()} to fal: not a local file or an http(s) URL")


@task(name="i2v_fal", cache_policy=NO_CACHE, task_run_name="i2v_fal-{run_id}", retries=2,
      retry_delay_seconds=[2, 15], retry_condition_fn=retry_transient)
async def i2v_fal(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Submit (or resume) one image-to-video job on fal and return the video's URL on fal's CDN."""
    model = load_catalog().get(model_id, kind="i2v")

    async def arguments() -> dict[str, Any]:
        return build_arguments(model, params, await image_url(image))

    cost = model.price.estimate(seconds=params.duration_s, resolution=params.resolution)
    return await run_fal_job(FalJob(run_id=run_id, step="i2v_fal", model=model, cost_usd=cost, arguments=arguments,
                                    parse=parse_video_output))
