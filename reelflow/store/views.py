"""Read models handed to callers (CLI, Python API, REST): plain pydantic, no ORM objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reelflow.core.domain import MediaFacts, StoredObject
from reelflow.core.money import Usd


class OutputView(StoredObject, MediaFacts):
    """One output of a run (its input image, video, poster, ...): the stored object and what it shows."""

    model_config = ConfigDict(frozen=False)

    role: str


class StepFacts(BaseModel):
    """What a step did: its backend, outcome, provider job, attempts, cost and error; in a pipeline run also its
    place in the graph (kind, the definition's step id, fan-out index, the steps it depends on, its own key)."""

    name: str
    backend: str
    status: str
    provider_job_id: str | None = None
    attempts: int = 1
    cost_usd: Usd | None = None
    error: str | None = None
    kind: str | None = None
    pipeline_step: str | None = None
    fan_index: int | None = None
    depends_on: list[str] | None = None
    idempotency_key: str | None = None
    reused_from: str | None = None
    """The earlier run whose finished step this one reused ("from cache"): no provider was called."""


class StepView(StepFacts):
    prefect_task_run_id: str | None = None
    gpu_seconds: float | None = None
    started_at: datetime
    finished_at: datetime | None = None


class RunView(BaseModel):
    run_id: str
    status: str
    cached: bool = False
    model: str
    backend: str
    spec: dict[str, Any]
    idempotency_key: str
    outputs: list[OutputView] = []
    steps: list[StepView] = []
    cost_usd: Usd | None = None
    error: str | None = None
    progress: float = 0.0
    prefect_flow_run_id: str | None = None
    batch_id: str | None = None
    kind: str = "video"
    pipeline_id: str | None = None
    inputs: dict[str, Any] | None = None
    pipeline_name: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def video(self) -> OutputView | None:
        return next((o for o in self.outputs if o.role == "video"), None)


class EventFacts(BaseModel):
    """One run event: its kind, message, the step it is about, its progress and data."""

    id: int
    run_id: str
    step: str | None = None
    kind: str
    message: str
    progress: float | None = None
    data: dict[str, Any] | None = None


class EventView(EventFacts):
    created_at: datetime


def step_view(step: Any) -> StepView:
    """A store step (an ORM row or a plain row of its columns) as its view."""
    detail = step.detail or {}
    reused = detail.get("reused")
    return StepView.model_validate(step, from_attributes=True).model_copy(update={
        "gpu_seconds": detail.get("gpu_seconds"),
        "reused_from": reused.get("run_id") if isinstance(reused, dict) else None})


def run_view(run: Any, pipeline_name: str | None = None) -> RunView:
    """A store run (an ORM row or a plain row of its columns, with ``outputs`` and ``steps``) as its view."""
    return RunView(
        run_id=run.id, status=run.status, model=run.model_id, backend=run.backend, spec=run.spec,
        idempotency_key=run.idempotency_key, cost_usd=run.cost_usd, error=run.error, progress=run.progress,
        prefect_flow_run_id=run.prefect_flow_run_id, batch_id=run.batch_id, created_at=run.created_at,
        started_at=run.started_at, finished_at=run.finished_at, kind=run.kind or "video",
        pipeline_id=run.pipeline_id, inputs=run.inputs, pipeline_name=pipeline_name,
        outputs=[OutputView.model_validate(o, from_attributes=True) for o in run.outputs],
        steps=[step_view(s) for s in run.steps],
    )
