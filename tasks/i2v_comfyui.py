"""``i2v_comfyui``: image-to-video on the user's GPU through ComfyUI (Wan 2.2 + LightX2V, or a custom workflow).

One job per task run, holding a slot of the GPU endpoint's concurrency limit from before submit until the
video is downloaded. See ``reelflow.jobs.comfyui`` for submit/resume/cancel rules.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.core.workflows import template_for
from reelflow.gpu.cost import job_cost
from reelflow.gpu.endpoint import block_name, load_endpoint
from reelflow.jobs.comfyui import ComfyJob, ComfyJobInput
from reelflow.jobs.gpu import finished_job, reach_for_step, video_output
from reelflow.jobs.step import tracked_step
from reelflow.orchestration.concurrency import gpu_slot
from reelflow.providers.comfyui import ComfyClient
from reelflow.runs.lock import run_lock
from reelflow.settings import get_settings

STEP = "i2v_comfyui"


@task(name="i2v_comfyui", cache_policy=NO_CACHE, task_run_name="i2v_comfyui-{run_id}")
async def i2v_comfyui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Run (or resume) the model's ComfyUI graph on the configured GPU and return the video as a scratch file."""
    model = load_catalog().get(model_id, kind="i2v")
    template = template_for(model)
    block = block_name()
    gpu = await load_endpoint(model.id, block)
    headers = gpu.auth_headers()

    async def probe(url: str) -> None:
        async with ComfyClient(url, headers=headers, timeout_s=15.0) as client:
            await client.health()

    with run_lock(run_id):
        async with tracked_step(run_id, STEP, "comfyui", endpoint=gpu.comfyui_url) as step:
            if not step.provider_job_id and (earlier := finished_job(run_id, STEP)):
                step.record_job(earlier)
            reached = await reach_for_step(step, gpu, block, "comfyui", probe)
            job_input = ComfyJobInput(run_id=run_id, template=template, params=params, image=image, gpu=gpu,
                                      poll_interval_s=get_settings().comfyui_poll_interval_s)
            async with gpu_slot(step, gpu, block) as slot, ComfyClient(reached.url, headers=headers) as client:
                job = ComfyJob(client, step, job_input)
                result, path = await job.run()
            rate = reached.instance.dph_total if reached.instance else None
            step.cost_usd = job_cost(model, rate, job.gpu_seconds)
            step.detail = {"prompt_id": result.prompt_id, "endpoint": reached.url, "workflow": template.name,
                           "gpu_seconds": round(job.gpu_seconds, 3), "usd_per_hour": rate,
                           "submits": job.attempts, "output": result.output.filename,
                           "recovered": result.recovered, "slot_wait_s": round(slot.waited_s, 3)}
    return await video_output(path, params, result.prompt_id, step.cost_usd)
