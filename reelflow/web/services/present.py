"""How stored runs look over HTTP: server paths become browser URLs, Prefect links added."""

from __future__ import annotations

import asyncio
import weakref
from datetime import UTC, datetime
from typing import Any

from anyio import CapacityLimiter

from reelflow.core.catalog import load_catalog
from reelflow.orchestration.prefect_server import ui_url
from reelflow.store.listing import RunFilter, find_runs
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


def _model_names() -> dict[str, str]:
    return {m.id: m.name for m in load_catalog().models}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _elapsed(run: RunView) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or datetime.now(UTC).replace(tzinfo=run.started_at.tzinfo)
    return max(0.0, (end - run.started_at).total_seconds())


def _card(run: RunView) -> dict[str, Any]:
    """What a gallery card shows besides the stored columns: names, prompt, seed, size and length."""
    video = run.video
    inputs = run.inputs or {}
    prompt = run.spec.get("prompt") if run.kind == "video" else inputs.get("prompt")
    seed = run.spec.get("seed") if run.kind == "video" else inputs.get("seed")
    return {
        "kind": run.kind, "pipeline_id": run.pipeline_id, "pipeline_name": run.pipeline_name,
        "model_name": (run.pipeline_name or run.spec.get("name")) if run.kind == "pipeline"
        else _model_names().get(run.model),
        "prompt": prompt if isinstance(prompt, str) else None,
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "duration_s": video.duration_s if video and video.duration_s else _number(run.spec.get("duration")),
        "width": video.width if video else None, "height": video.height if video else None,
        "elapsed_s": _elapsed(run),
        "input_path": next((o.path for o in run.outputs if o.role == "input" and o.path), None),
    }


def run_out(run: RunView) -> RunOut:
    outputs = [OutputOut(url=media_url(o), **o.model_dump(exclude={"path", "url"})) for o in run.outputs]
    return RunOut(**_card(run),
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


def run_page(where: RunFilter, *, sort: str, limit: int, offset: int) -> bytes:
    """A page of runs as the JSON ``GET /api/runs`` answers (a ``RunPage``), serialised once. Without ``as_of`` the
    page is read as of now, and says so, for the next pages to ask the same."""
    if where.as_of is None:
        where = RunFilter(**{**where.__dict__, "as_of": datetime.now(UTC)})
    runs, total = find_runs(where, sort=sort, limit=limit, offset=offset)
    next_offset = offset + len(runs) if offset + len(runs) < total else None
    return RunPage(total=total, limit=limit, offset=offset, runs=[run_out(r) for r in runs], as_of=where.as_of,
                   next_offset=next_offset).model_dump_json().encode()
