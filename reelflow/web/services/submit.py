"""Creating runs from API requests: merge a saved pipeline, resolve the image, prepare, start."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from anyio import CapacityLimiter

from reelflow.errors import ApiError, SpecError
from reelflow.runs import cancel as cancelling
from reelflow.runs import retry
from reelflow.runs.launcher import Launcher
from reelflow.runs.prepare import Prepared, prepare_run
from reelflow.store import pipelines, repo
from reelflow.store.views import RunView
from reelflow.web.schemas import RunCreate
from reelflow.web.services.images import UPLOAD_PREFIX, resolve_image

CANCEL_WAIT_S = 15.0
CREATORS = 2
"""``POST /api/runs`` bodies turned into recorded runs at once. Each is CPU under the GIL and a turn on the store's
write lock: 30 threads at once only take turns with each other and with the event loop, which then answers
every request late (measured by ``benchmarks/api_load.py``)."""
_creators: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()


def run_creators(body: RunCreate) -> CapacityLimiter | None:
    """This event loop's turns for creating ``body``'s run (a limiter waits with the primitives of the loop it was
    first used in); None, the thread pool's own limit, for a run whose image may be fetched from a URL (a saved
    pipeline's may be one), which can take up to REELFLOW_DOWNLOAD_TIMEOUT_S: too long to hold one of few turns."""
    if body.pipeline_id is not None or any(image is not None and not image.startswith(UPLOAD_PREFIX)
                                           for image in (body.image, body.end_image)):
        return None
    return _creators.setdefault(asyncio.get_running_loop(), CapacityLimiter(CREATORS))


def merge_spec(base: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A run's own image replaces the pipeline's image step, and the other way round; null means default."""
    merged = dict(base)
    if fields.get("image") is not None:
        merged.pop("image_prompt", None)
    if fields.get("image_prompt") is not None:
        merged.pop("image", None)
    merged.update(fields)
    return {key: value for key, value in merged.items() if value is not None}


def submit(spec: dict[str, Any], launcher: Launcher, *, force: bool = False,
           pipeline_id: str | None = None) -> Prepared:
    """Validate and record the run (or find the identical finished one) and start it in the background: the
    answer never waits for the Prefect server (``Launcher.start_soon``)."""
    spec = dict(spec)
    for field in ("image", "end_image"):
        if field in spec:
            spec[field] = resolve_image(spec[field], field)
    prepared = prepare_run(spec, force=force, pipeline_id=pipeline_id)
    if not prepared.cached:
        launcher.start_soon(prepared.run.run_id, prepared.run.spec, force=force)
    return prepared


def create_run(body: RunCreate, launcher: Launcher) -> Prepared:
    saved = pipelines.get_pipeline(body.pipeline_id) if body.pipeline_id else None
    if saved is not None and saved.saved_as == "definition":
        raise SpecError("pipeline_id", f"pipeline '{saved.name}' is a graph of steps, not a one-video spec; run it "
                        f"with POST /api/pipelines/{saved.pipeline_id}/runs and its inputs")
    base = saved.spec if saved is not None else {}
    fields = body.model_dump(exclude_unset=True, exclude={"pipeline_id", "force"})
    return submit(merge_spec(base, fields), launcher, force=body.force, pipeline_id=body.pipeline_id)


def retry_run(run_id: str, launcher: Launcher) -> RunView:
    """A failed run runs again under its own id in a new flow run (resuming any provider job it paid for); a
    cancelled run is rendered afresh as a new run with the same spec. Answers once the retry is recorded."""
    run = repo.get_run(run_id)
    if (why := retry.not_retryable(run)) is not None:
        raise ApiError(409, why, "run_id")
    return retry.retry_run(run, launcher, background=True)


def cancel_run(run_id: str, launcher: Launcher) -> RunView:
    """Cancel the run wherever it executes and wait (bounded) for it to end; returns the run as it is then."""
    run = repo.get_run(run_id)
    if run.status in repo.FINISHED:
        raise ApiError(409, f"run {run_id} is already {run.status}", "run_id")
    return asyncio.run(cancelling.cancel_run(run_id, CANCEL_WAIT_S, here=launcher))
