"""``cache_r2``: copy an output into durable storage (R2, or the local folder offline) and record it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.core.domain import MediaRef, ProviderOutput, StoredObject
from reelflow.jobs.step import step_name, tracked_step
from reelflow.storage import Storage, get_storage
from reelflow.storage.keys import RunKey
from reelflow.storage.poster import make_poster
from reelflow.store import repo
from reelflow.store.views import OutputView


def _store_with_poster(storage: Storage, output: ProviderOutput,
                       run_key: RunKey) -> tuple[StoredObject, StoredObject | None]:
    stored = storage.put_media(output.media, run_key)
    if output.role != "video":
        return stored, None
    copy = storage.readable(stored.key, stored.content_type)  # the provider's URL is read once, by put_media
    return stored, storage.put_bytes(make_poster(copy), "image/jpeg", "poster.jpg")


@task(name="cache_r2", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      task_run_name="cache_r2-{output.role}-{run_id}")
async def cache_r2(run_id: str, output: ProviderOutput, storage: str = "auto") -> OutputView:
    """Stream ``output`` into storage and add it to the run's outputs; a video also gets a JPEG poster of its
    first frame. Provider URLs expire, so this runs as soon as one exists.

    A URL output lands at the run's key ``runs/<run_id>/<role><ext>``, so a retry finds it there instead of
    copying it again; a local file at its content key (``reelflow.storage.keys``)."""
    target = await asyncio.to_thread(get_storage, storage)
    run_key = RunKey(run_id, step_name(output.role, auxiliary=True))  # a pipeline step's own: shots[1]:video
    async with tracked_step(run_id, f"cache_r2:{output.role}", target.name, auxiliary=True) as step:
        stored, poster = await asyncio.to_thread(_store_with_poster, target, output, run_key)
        step.detail = {"key": stored.key, "bytes": stored.bytes, "url": stored.url}
        view = repo.add_output(run_id, step.step_id, stored, output)
        if poster is not None:
            repo.add_output(run_id, step.step_id, poster, ProviderOutput(
                media=MediaRef(url=poster.url, content_type="image/jpeg"), role="poster"))
    if output.scratch and output.media.path:
        await asyncio.to_thread(Path(output.media.path).unlink, missing_ok=True)
    return view
