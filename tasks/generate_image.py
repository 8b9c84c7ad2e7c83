"""``generate_image``: text-to-image (FLUX on fal) for pipelines that start from a prompt."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.catalog import load_catalog
from reelflow.domain import ImageParams, ProviderOutput
from reelflow.errors import ModelUnavailableError


@task(name="generate_image", cache_policy=NO_CACHE, task_run_name="generate_image-{run_id}")
async def generate_image(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    model = load_catalog().get(model_id, kind="t2i")
    raise ModelUnavailableError(model.id, [f"the '{model.backend}' backend is not built into this version"])
