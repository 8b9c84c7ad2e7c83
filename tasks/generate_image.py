"""``generate_image``: text-to-image (FLUX on fal) for pipelines that start from a prompt."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import ImageParams, ProviderOutput
from reelflow.jobs.fal import retry_transient, run_generate_image


@task(name="generate_image", cache_policy=NO_CACHE, task_run_name="generate_image-{run_id}", retries=2,
      retry_delay_seconds=[2, 10], retry_condition_fn=retry_transient)
async def generate_image(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """Make the pipeline's start image from its prompt; returns the image's URL on the provider's CDN."""
    return await run_generate_image(run_id, model_id, params)
