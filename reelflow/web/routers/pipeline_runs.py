"""Pipeline runs over REST: start a stored pipeline (``POST /api/pipelines/{id}/runs``), its step graph
(``GET /api/runs/{id}/graph``), answer an approval step (``POST /api/runs/{id}/steps/{step}/approve``) and resume a
failed one from its failed step (``POST /api/runs/{id}/resume``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from reelflow.errors import ApiError
from reelflow.runs import approvals
from reelflow.store import repo
from reelflow.web.auth import require_token
from reelflow.web.schemas import RunOut
from reelflow.web.services.pipeline_runs import resume_pipeline_run, run_graph, start_pipeline_run
from reelflow.web.services.present import run_out

router = APIRouter(tags=["pipeline runs"])
RunId = Path(min_length=1, max_length=64, description="A run id, or a unique prefix of it (6+ characters).")
PipelineId = Path(min_length=1, max_length=64, description="A stored pipeline's id.")
StepId = Path(min_length=1, max_length=120, description="The approval step's id.")
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such run or step"},
          409: {"description": "The step is not waiting for an answer (not reached, answered, or the run ended)"},
          422: {"description": "Bad input; 'field' names it"}}


class PipelineRunIn(BaseModel):
    """Values for the pipeline's inputs (by name; defaults fill the rest); an image input is an http(s) URL or
    ``upload:<id>`` from POST /api/uploads."""

    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: dict[str, Any] = Field(default_factory=dict, max_length=200)
    force: bool = Field(default=False, description="Render every step again, even ones done before.")


class ApprovalIn(BaseModel):
    """An answer to an approval step; ``prompt`` and ``seed`` only with ``redo``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    decision: Literal["approve", "reject", "redo"]
    prompt: str | None = Field(default=None, max_length=4000, description="redo: the edited prompt.")
    seed: int | None = Field(default=None, ge=0, le=approvals.MAX_SEED, description="redo: the new seed.")
    note: str | None = Field(default=None, max_length=2000, description="Why, kept in the run's history.")


class ApprovalOut(BaseModel):
    run_id: str
    step: str
    decision: str
    status: Literal["sent"] = "sent"


@router.post("/api/pipelines/{pipeline_id}/runs", status_code=201, response_model=RunOut,
             dependencies=[Depends(require_token)],
             responses={200: {"description": "An identical finished run, returned from cache"}, **ERRORS,
                        404: {"description": "No such pipeline"}})
def start(body: PipelineRunIn, request: Request, response: Response, pipeline_id: str = PipelineId) -> RunOut:
    """Run the stored pipeline's latest version with these inputs (201 with the run, which renders in the
    background); a bad input is refused before anything is recorded (422 naming ``inputs.<name>``)."""
    prepared = start_pipeline_run(pipeline_id, body.inputs, request.app.state.launcher, force=body.force)
    if prepared.cached:
        response.status_code = 200
    return run_out(prepared.run)


@router.post("/api/runs/{run_id}/steps/{step}/approve", response_model=ApprovalOut,
             dependencies=[Depends(require_token)], responses=ERRORS)
def approve(body: ApprovalIn, run_id: str = RunId, step: str = StepId) -> ApprovalOut:
    """Approve, reject (the run ends cancelled) or redo (with a new prompt or seed) a waiting approval step: the
    same Prefect resume-with-input the Prefect UI's form and ``reelflow approve`` send."""
    full_id = repo.resolve_run_id(run_id)
    try:
        approvals.answer_approval(full_id, step, body.decision, prompt=body.prompt, seed=body.seed,
                                  note=body.note, via="api")
    except approvals.StepNotFoundError as exc:
        raise ApiError(404, str(exc), "step") from None
    except approvals.NotWaitingError as exc:
        raise ApiError(409, str(exc), "step") from None
    return ApprovalOut(run_id=full_id, step=step, decision=body.decision)


@router.get("/api/runs/{run_id}/graph", responses={404: ERRORS[404]})
def graph(run_id: str = RunId) -> dict[str, Any]:
    """The run and its step graph: each step's kind, model, what it depends on, state, cost, error and items (one,
    or one per fan-out item) with their outputs as browser URLs; a one-video run is its one-step pipeline."""
    return run_graph(run_id)


@router.post("/api/runs/{run_id}/resume", response_model=RunOut, dependencies=[Depends(require_token)],
             responses=ERRORS)
def resume(request: Request, run_id: str = RunId) -> RunOut:
    """Resume a failed pipeline run from its failed step (``reelflow pipeline resume``): completed steps are kept,
    the rest run again in a new flow run; 409 for a run that is not a failed pipeline run."""
    return run_out(resume_pipeline_run(run_id, request.app.state.launcher))
