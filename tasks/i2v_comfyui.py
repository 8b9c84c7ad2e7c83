"""``i2v_comfyui``: image-to-video on the user's GPU through ComfyUI (Wan 2.2 + LightX2V, or a custom workflow)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.catalog import load_catalog
from reelflow.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ModelUnavailableError


@task(name="i2v_comfyui", cache_policy=NO_CACHE, task_run_name="i2v_comfyui-{run_id}")
async def i2v_comfyui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    model = load_catalog().get(model_id, kind="i2v")
    raise ModelUnavailableError(model.id, ["the 'comfyui' backend is not built into this version"])
