"""``t2v_fal``: text-to-video on fal.ai (Veo 3.1 and the other t2v models): no start image."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import ProviderOutput, VideoParams
from reelflow.jobs.fal import retry_transient, run_t2v_fal


@task(name="t2v_fal", cache_policy=NO_CACHE, task_run_name="t2v_fal-{run_id}", retries=2,
      retry_delay_seconds=[2, 15], retry_condition_fn=retry_transient)
async def t2v_fal(run_id: str, model_id: str, params: VideoParams) -> ProviderOutput:
    """Submit (or resume) one text-to-video job on fal and return the video's URL on fal's CDN."""
    return await run_t2v_fal(run_id, model_id, params)
