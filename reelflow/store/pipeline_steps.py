"""Store functions of pipeline runs and their steps: the run's inputs, each step's place in the graph, its
idempotency key and outputs, and finding a completed step with the same key to reuse."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from reelflow.errors import RunNotFoundError
from reelflow.store.db import session_scope
from reelflow.store.models import Event, Output, Run, Step, utcnow
from reelflow.store.views import OutputView

OUTPUTS_FIELD = "outputs"
"""``detail["outputs"]`` of a completed pipeline step: output name -> {"media": <OutputView>} or {"text": ...}."""


@dataclass(frozen=True)
class PipelineRunFacts:
    kind: str
    inputs: dict[str, Any]
    pipeline_version: int | None
    forced: bool


@dataclass(frozen=True)
class FoundStep:
    """A completed step whose outputs can be reused: where it ran and what it made."""

    run_id: str
    name: str
    step_id: int
    outputs: dict[str, Any]  # name -> OutputView or text
    detail: dict[str, Any]


def create_pipeline_run(*, run_id: str, idempotency_key: str, definition: dict[str, Any], inputs: dict[str, Any],
                        name: str, forced: bool, pipeline_id: str | None, version: int | None,
                        batch_id: str | None) -> None:
    with session_scope() as s:
        s.add(Run(id=run_id, idempotency_key=idempotency_key, spec=definition, model_id=f"pipeline:{name}"[:100],
                  backend="pipeline", status="queued", forced=forced, pipeline_id=pipeline_id, batch_id=batch_id,
                  kind="pipeline", inputs=inputs, pipeline_version=version))
        s.flush()
        s.add(Event(run_id=run_id, kind="status", message="queued", progress=0.0))


def run_facts(run_id: str) -> PipelineRunFacts:
    with session_scope(readonly=True) as s:
        run = s.get(Run, run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return PipelineRunFacts(kind=run.kind or "video", inputs=dict(run.inputs or {}),
                                pipeline_version=run.pipeline_version, forced=bool(run.forced))


def plan_step(run_id: str, name: str, *, kind: str, pipeline_step: str, fan_index: int | None,
              depends_on: list[str], backend: str) -> int:
    """The store step a pipeline step (item) records into, created ``pending`` when it has no open one yet, so a
    run shows its whole graph from the start; the jobs' ``tracked_step`` then opens this same row."""
    with session_scope() as s:
        step = s.scalars(select(Step).where(Step.run_id == run_id, Step.name == name, Step.status != "completed")
                         .order_by(Step.id.desc()).limit(1)).first()
        if step is None:
            step = Step(run_id=run_id, name=name, backend=backend, status="pending", attempts=0)
            s.add(step)
        step.kind, step.pipeline_step, step.fan_index, step.depends_on = kind, pipeline_step, fan_index, depends_on
        s.flush()
        return step.id


def mark_step(run_id: str, name: str, status: str, *, error: str | None = None) -> None:
    """Set an open step's status (``skipped`` when what it needs failed, ``cancelled``)."""
    with session_scope() as s:
        step = s.scalars(select(Step).where(Step.run_id == run_id, Step.name == name, Step.status != "completed")
                         .order_by(Step.id.desc()).limit(1)).first()
        if step is not None:
            step.status, step.error, step.finished_at = status, error, utcnow()


def close_open_steps(run_id: str, status: str, error: str) -> None:
    """End the steps the run never finished (pending, running) as ``status``: the run itself ended."""
    with session_scope() as s:
        for step in s.scalars(select(Step).where(Step.run_id == run_id, Step.status.in_(("pending", "running")))):
            step.status, step.error, step.finished_at = status, error, utcnow()


def finish_step(run_id: str, name: str, *, key: str, outputs: dict[str, Any], facts: dict[str, Any],
                reused_from: FoundStep | None = None) -> None:
    """Record a pipeline step item's outputs and idempotency key on its (latest) store step, which from now on
    counts as done for that key. A reused step is recorded here as completed, with what it reused."""
    encoded = {name: ({"media": value.model_dump(mode="json")} if isinstance(value, OutputView) else {"text": value})
               for name, value in outputs.items()}
    with session_scope() as s:
        step = s.scalars(select(Step).where(Step.run_id == run_id, Step.name == name)
                         .order_by(Step.id.desc()).limit(1)).first()
        assert step is not None, name
        detail = dict(step.detail or {})
        detail.update(facts)
        detail[OUTPUTS_FIELD] = encoded
        if reused_from is not None:
            detail["reused"] = {"run_id": reused_from.run_id, "step": reused_from.name}
            step.status, step.cost_usd, step.finished_at, step.error = "completed", Decimal(0), utcnow(), None
            step.backend = "cache"
        step.idempotency_key = key
        step.detail = detail


def find_done(key: str, *, run_id: str, any_run: bool) -> FoundStep | None:
    """The newest completed step with this key (in this run, else in any run when ``any_run``) whose stored files
    are all still there."""
    with session_scope(readonly=True) as s:
        query = select(Step).where(Step.idempotency_key == key, Step.status == "completed")
        if not any_run:
            query = query.where(Step.run_id == run_id)
        for step in s.scalars(query.order_by((Step.run_id == run_id).desc(), Step.id.desc()).limit(20)):
            encoded = (step.detail or {}).get(OUTPUTS_FIELD)
            if encoded is None:
                continue
            outputs = _decode(encoded)
            if outputs is not None:
                return FoundStep(run_id=step.run_id, name=step.name, step_id=step.id, outputs=outputs,
                                 detail=dict(step.detail or {}))
    return None


def _decode(encoded: dict[str, Any]) -> dict[str, Any] | None:
    outputs: dict[str, Any] = {}
    for name, value in encoded.items():
        if "text" in value:
            outputs[name] = value["text"]
            continue
        media = OutputView.model_validate(value["media"])
        if media.path is not None and not Path(media.path).is_file():
            return None
        outputs[name] = media
    return outputs


def link_output(run_id: str, step_name: str, output: OutputView) -> OutputView:
    """An output of an earlier run (a reused step's) recorded as this run's too, on the step that reused it."""
    with session_scope() as s:
        step_id = s.scalars(select(Step.id).where(Step.run_id == run_id, Step.name == step_name)
                            .order_by(Step.id.desc()).limit(1)).first()
        row = s.scalars(select(Output).where(Output.run_id == run_id, Output.key == output.key,
                                             Output.role == output.role, Output.step_id == step_id).limit(1)).first()
        if row is None:
            row = Output(run_id=run_id, step_id=step_id, **output.model_dump())
            s.add(row)
            s.flush()
        return OutputView.model_validate(row, from_attributes=True)


def step_outputs(detail: dict[str, Any] | None) -> dict[str, Any]:
    """A step's recorded outputs, decoded (media as OutputView, texts as text); empty when it has none."""
    return _decode((detail or {}).get(OUTPUTS_FIELD) or {}) or {}


def pipeline_steps(run_id: str) -> list[dict[str, Any]]:
    """Every store step of the run with its graph fields, oldest first."""
    with session_scope(readonly=True) as s:
        return [{"id": st.id, "name": st.name, "kind": st.kind, "pipeline_step": st.pipeline_step,
                 "fan_index": st.fan_index, "depends_on": st.depends_on, "status": st.status,
                 "backend": st.backend, "provider_job_id": st.provider_job_id, "cost_usd": st.cost_usd,
                 "error": st.error, "detail": st.detail, "idempotency_key": st.idempotency_key,
                 "attempts": st.attempts, "started_at": st.started_at, "finished_at": st.finished_at}
                for st in s.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.id))]
