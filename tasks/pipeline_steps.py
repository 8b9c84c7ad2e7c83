"""The pipeline step kinds that have no task of their own yet: local text-to-image, image edits, prompt rewrites,
a video's last frame and concatenation. Each is one Prefect task calling one job, which records (``tracked_step``)
into the pipeline step being run; the pipeline flow names each task run after its step."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import ImageParams, MediaRef, ProviderOutput


@task(name="generate_image_local", cache_policy=NO_CACHE)
async def generate_image_local(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """A local text-to-image stand-in (not an AI model)."""
    from reelflow.jobs.local_steps import run_local_image

    return await run_local_image(run_id, model_id, params)


@task(name="edit_image", cache_policy=NO_CACHE)
async def edit_image(run_id: str, model_id: str, backend: str, image: MediaRef, params: ImageParams) -> ProviderOutput:
    """An image and an instruction (``params.prompt``) to a new image: locally, or on fal."""
    if backend == "local":
        from reelflow.jobs.local_steps import run_local_edit

        return await run_local_edit(run_id, model_id, image, params)
    from reelflow.jobs.fal import run_edit_image

    return await run_edit_image(run_id, model_id, image, params)


@task(name="enhance_prompt", cache_policy=NO_CACHE)
async def enhance_prompt(run_id: str, model_id: str, prompt: str, style: str | None, seed: int | None) -> str:
    """A prompt rewritten by a language model (or the local template)."""
    from reelflow.jobs.text import run_enhance_prompt

    return await run_enhance_prompt(run_id, model_id, prompt, style=style, seed=seed)


@task(name="last_frame", cache_policy=NO_CACHE)
async def last_frame(run_id: str, video: MediaRef) -> ProviderOutput:
    """A video's last frame as a PNG: the start of the next clip of an extend step."""
    from reelflow.jobs.local_steps import run_last_frame

    return await run_last_frame(run_id, video)


@task(name="concat", cache_policy=NO_CACHE)
async def concat(run_id: str, clips: Sequence[MediaRef], crossfade_s: float, size: tuple[int, int] | None,
                 fps: float | None) -> ProviderOutput:
    """Clips joined into one MP4 (sizes and frame rates made equal, optionally crossfaded), on the CPU."""
    from reelflow.jobs.local_steps import run_concat

    return await run_concat(run_id, clips, crossfade_s=crossfade_s, size=size, fps=fps)
