"""``i2v_comfyui``: image-to-video on the user's GPU through ComfyUI (Wan 2.2 + LightX2V, or a custom workflow).

One job per task run, holding a slot of the GPU endpoint's concurrency limit from before submit until the
video is downloaded. See ``reelflow.jobs.comfyui`` for submit/resume/cancel rules.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.jobs.comfyui import run_comfyui


@task(name="i2v_comfyui", cache_policy=NO_CACHE, task_run_name="i2v_comfyui-{run_id}")
async def i2v_comfyui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Run (or resume) the model's ComfyUI graph on the configured GPU and return the video as a scratch file."""
    return await run_comfyui(run_id, model_id, image, params)
