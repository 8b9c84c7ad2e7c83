"""``i2v_fal``: image-to-video on fal.ai (Wan, Kling, Veo, Hailuo; first-last-frame where the model takes it)."""

from __future__ import annotations

import asyncio

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.core.netguard import check_public_url
from reelflow.jobs.fal import retry_transient, run_i2v_fal
from reelflow.settings import get_settings
from reelflow.store import repo


def fal_image(run_id: str, image: MediaRef, field: str = "image") -> MediaRef:
    """The run's own http(s) image URL (``field`` of its spec), which fal fetches itself, when the run was given
    one; otherwise ``image`` (the stored copy). The URL was read, checked as an image and stored when the run was
    prepared; its host is checked again here, since it is sent on."""
    source = repo.get_run(run_id).spec.get(field)
    if not isinstance(source, str) or not source.startswith(("http://", "https://")):
        return image
    check_public_url(source, field=field, allow_private=get_settings().allow_private_urls)
    return MediaRef(url=source, content_type=image.content_type)


def end_image(run_id: str) -> MediaRef | None:
    """The run's last frame (first-last-frame models), stored when the run was prepared; None without one."""
    stored = next((o for o in repo.get_run(run_id).outputs if o.role == "end_image"), None)
    if stored is None:
        return None
    return fal_image(run_id, MediaRef(path=stored.path, url=stored.url, content_type=stored.content_type),
                     "end_image")


@task(name="i2v_fal", cache_policy=NO_CACHE, task_run_name="i2v_fal-{run_id}", retries=2,
      retry_delay_seconds=[2, 15], retry_condition_fn=retry_transient)
async def i2v_fal(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Submit (or resume) one image-to-video job on fal (with the run's end image, if it has one) and return the
    video's URL on fal's CDN."""
    start = await asyncio.to_thread(fal_image, run_id, image)
    return await run_i2v_fal(run_id, model_id, start, params, await asyncio.to_thread(end_image, run_id))
