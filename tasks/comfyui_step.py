"""``comfyui``: a registered ComfyUI workflow that takes an image or a video and makes an image or a video (an
upscaler, an interpolator, your own graph) as a pipeline step. Image-to-video workflows run as ``i2v_comfyui``.

One job per task run, recorded into the pipeline step; a stored prompt id is waited on again, never queued
again (see ``reelflow.jobs.comfyui``)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput
from reelflow.jobs.comfyui import run_comfyui_media
from reelflow.providers.comfyui import MediaParams


@task(name="comfyui", cache_policy=NO_CACHE, task_run_name="comfyui-{run_id}")
async def comfyui_step(run_id: str, model_id: str, media: MediaRef, params: MediaParams) -> ProviderOutput:
    """Upload ``media`` to the configured ComfyUI, run the model's workflow on it and return its output (an image
    or a video) as a scratch file."""
    return await run_comfyui_media(run_id, model_id, media, params)
