"""``cache_r2``: copy an output into durable storage (R2, or the local folder offline) and record it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE

from reelflow.domain import ProviderOutput, StoredObject
from reelflow.storage import Storage, get_storage
from reelflow.store import repo
from reelflow.store.views import OutputView
from tasks._steps import tracked_step

DOWNLOAD_CHUNK = 1024 * 1024


def _copy(storage: Storage, output: ProviderOutput) -> StoredObject:
    media = output.media
    if media.path:
        return storage.put_file(Path(media.path), media.content_type)
    if not media.url:
        raise ValueError(f"output '{output.role}' has neither a path nor a URL")
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True) as client, \
            client.stream("GET", media.url, headers=media.headers or {}) as response:
        response.raise_for_status()
        return storage.put_stream(response.iter_bytes(DOWNLOAD_CHUNK), media.content_type, media.filename)


@task(name="cache_r2", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      task_run_name="cache_r2-{output.role}-{run_id}")
async def cache_r2(run_id: str, output: ProviderOutput, storage: str = "auto") -> OutputView:
    """Stream ``output`` into storage under its content-addressed key and add it to the run's outputs."""
    target = get_storage(storage)
    async with tracked_step(run_id, f"cache_r2:{output.role}", target.name) as step:
        stored = await asyncio.to_thread(_copy, target, output)
        step.detail = {"key": stored.key, "bytes": stored.bytes}
        view = repo.add_output(run_id, step.step_id, stored, output)
    if output.scratch and output.media.path:
        await asyncio.to_thread(Path(output.media.path).unlink, missing_ok=True)
    return view
