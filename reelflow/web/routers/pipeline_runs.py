"""Pipeline runs over REST: answer an approval step (``POST /api/runs/{id}/steps/{step}/approve``)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from reelflow.errors import ApiError
from reelflow.runs import approvals
from reelflow.store import repo
from reelflow.web.auth import require_token

router = APIRouter(tags=["pipeline runs"])
RunId = Path(min_length=1, max_length=64, description="A run id, or a unique prefix of it (6+ characters).")
StepId = Path(min_length=1, max_length=120, description="The approval step's id.")
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such run or step"},
          409: {"description": "The step is not waiting for an answer (not reached, answered, or the run ended)"},
          422: {"description": "Bad input; 'field' names it"}}


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
