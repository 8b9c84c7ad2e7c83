"""``i2v_fal``: image-to-video on fal.ai (Wan 2.5, Kling, Veo)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.jobs.fal import retry_transient, run_i2v_fal


@task(name="i2v_fal", cache_policy=NO_CACHE, task_run_name="i2v_fal-{run_id}", retries=2,
      retry_delay_seconds=[2, 15], retry_condition_fn=retry_transient)
async def i2v_fal(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Submit (or resume) one image-to-video job on fal and return the video's URL on fal's CDN."""
    return await run_i2v_fal(run_id, model_id, image, params)
