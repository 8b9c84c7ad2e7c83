"""How stored runs look over HTTP: server paths become browser URLs, Prefect links added."""

from __future__ import annotations

import asyncio
import weakref

from anyio import CapacityLimiter

from reelflow.orchestration.prefect_server import ui_url
from reelflow.store import repo
from reelflow.store.views import OutputView, RunView
from reelflow.web.schemas import OutputOut, RunOut, RunPage, StepOut
from reelflow.web.services.images import client_ref

MEDIA_PREFIX = "/api/media/"
PAGE_READERS = 2
"""Pages of runs read and serialised at once: the work is CPU-bound, so more threads only take turns holding the
GIL (every request then finishes late) and keep the server's other requests waiting for a thread."""


def media_url(output: OutputView) -> str | None:
    """A local file is served by ``/api/media/<key>``; anything else keeps its own http(s) URL."""
    if output.path is not None:
        return MEDIA_PREFIX + output.key
    if output.url and output.url.startswith(("http://", "https://")):
        return output.url
    return None


def _first_url(run: RunView, *roles: str) -> str | None:
    for role in roles:
        found = next((o for o in run.outputs if o.role == role), None)
        if found is not None:
            return media_url(found)
    return None


def run_out(run: RunView) -> RunOut:
    outputs = [OutputOut(url=media_url(o), **o.model_dump(exclude={"path", "url"})) for o in run.outputs]
    return RunOut(
        run_id=run.run_id, status=run.status, cached=run.cached, model=run.model, backend=run.backend,
        spec={**run.spec, "image": client_ref(run.spec.get("image"))} if "image" in run.spec else run.spec,
        progress=run.progress, cost_usd=run.cost_usd, error=run.error,
        video_url=_first_url(run, "video"), poster_url=_first_url(run, "poster", "image", "input"),
        input_url=_first_url(run, "input", "image"), prefect_flow_run_id=run.prefect_flow_run_id,
        prefect_url=ui_url(run.prefect_flow_run_id), batch_id=run.batch_id, created_at=run.created_at,
        started_at=run.started_at, finished_at=run.finished_at, outputs=outputs,
        steps=[StepOut.model_validate(s.model_dump()) for s in run.steps],
    )


_readers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()


def page_readers() -> CapacityLimiter:
    """This event loop's limiter (a limiter waits with the primitives of the loop it was first used in)."""
    return _readers.setdefault(asyncio.get_running_loop(), CapacityLimiter(PAGE_READERS))


def run_page(*, limit: int, offset: int, status: str | None, model: str | None, batch_id: str | None) -> bytes:
    """A page of runs as the JSON ``GET /api/runs`` answers (a ``RunPage``), serialised once."""
    runs, total = repo.list_runs(limit=limit, offset=offset, status=status, model=model, batch_id=batch_id)
    return RunPage(total=total, limit=limit, offset=offset, runs=[run_out(r) for r in runs]).model_dump_json().encode()
