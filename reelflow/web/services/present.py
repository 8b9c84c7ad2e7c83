"""How stored runs look over HTTP: server paths become browser URLs, Prefect links added."""

from __future__ import annotations

from reelflow.orchestration.prefect_server import ui_url
from reelflow.store.views import OutputView, RunView
from reelflow.web.schemas import OutputOut, RunOut, StepOut
from reelflow.web.services.images import client_ref

MEDIA_PREFIX = "/api/media/"


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
