"""``i2v_fal``: image-to-video on fal.ai (Wan 2.5, Kling, Veo)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.catalog import load_catalog
from reelflow.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ModelUnavailableError


@task(name="i2v_fal", cache_policy=NO_CACHE, task_run_name="i2v_fal-{run_id}")
async def i2v_fal(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    model = load_catalog().get(model_id, kind="i2v")
    raise ModelUnavailableError(model.id, ["the 'fal' backend is not built into this version"])
