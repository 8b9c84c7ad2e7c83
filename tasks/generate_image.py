"""``generate_image``: text-to-image (FLUX on fal) for pipelines that start from a prompt."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import ImageParams, ProviderOutput
from reelflow.errors import ModelUnavailableError
from reelflow.jobs.fal import FalJob, retry_transient, run_fal_job
from reelflow.providers.fal import build_arguments, parse_image_output


@task(name="generate_image", cache_policy=NO_CACHE, task_run_name="generate_image-{run_id}", retries=2,
      retry_delay_seconds=[2, 10], retry_condition_fn=retry_transient)
async def generate_image(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """Make the pipeline's start image from its prompt; returns the image's URL on the provider's CDN."""
    model = load_catalog().get(model_id, kind="t2i")
    if model.backend != "fal":
        raise ModelUnavailableError(model.id, [f"the '{model.backend}' backend cannot make images"])

    async def arguments() -> dict[str, Any]:
        return build_arguments(model, params, None)

    cost = model.price.estimate(megapixels=params.width * params.height / 1_000_000)
    return await run_fal_job(FalJob(run_id=run_id, step="generate_image", model=model, cost_usd=cost,
                                    arguments=arguments, parse=parse_image_output))
