"""Small repository functions over the store; each one is one short transaction."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from reelflow.core.domain import ProviderOutput, StoredObject
from reelflow.errors import AmbiguousRunIdError, RunNotFoundError
from reelflow.store.db import session_scope
from reelflow.store.listing import RunFilter, find_runs, runs_by_id
from reelflow.store.models import Event, Output, Run, Step, utcnow
from reelflow.store.views import EventView, OutputView, RunView, run_view

FINISHED = frozenset({"completed", "failed", "cancelled"})
MIN_ID_PREFIX = 6
"""The shortest run id prefix ``resolve_run_id`` accepts."""


def _load(session, run_id: str) -> Run:
    run = session.get(Run, run_id, options=[selectinload(Run.steps), selectinload(Run.outputs)])
    if run is None:
        raise RunNotFoundError(run_id)
    return run


def create_run(*, run_id: str, idempotency_key: str, spec: dict[str, Any], model_id: str, backend: str,
               forced: bool = False, pipeline_id: str | None = None, batch_id: str | None = None,
               input_files: Sequence[tuple[StoredObject, ProviderOutput]] = ()) -> RunView:
    """Record a queued run and its stored input files in one short write transaction; read back after it."""
    with session_scope() as s:
        s.add(Run(id=run_id, idempotency_key=idempotency_key, spec=spec, model_id=model_id, backend=backend,
                  status="queued", forced=forced, pipeline_id=pipeline_id, batch_id=batch_id))
        s.flush()
        s.add(Event(run_id=run_id, kind="status", message="queued", progress=0.0))
        s.add_all(_output_row(run_id, None, stored, produced) for stored, produced in input_files)
    return runs_by_id([run_id])[0]


def get_run(run_id: str) -> RunView:
    with session_scope(readonly=True) as s:
        return run_view(_load(s, run_id))


def find_run(run_id: str) -> RunView | None:
    try:
        return get_run(run_id)
    except RunNotFoundError:
        return None


def run_statuses(run_ids: list[str]) -> dict[str, str]:
    """Each run's status, in one query; an id the store does not have is left out."""
    if not run_ids:
        return {}
    with session_scope(readonly=True) as s:
        return dict(s.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids))).tuples().all())


def queued_on_prefect() -> list[tuple[str, str | None, str]]:
    """``(run id, owner, flow run id)`` of every queued run that has a Prefect flow run."""
    with session_scope(readonly=True) as s:
        return [tuple(row) for row in s.execute(  # type: ignore[misc]
            select(Run.id, Run.owner, Run.prefect_flow_run_id)
            .where(Run.status == "queued", Run.prefect_flow_run_id.is_not(None)).order_by(Run.created_at))]


def take_flow_run(run_id: str, flow_run_id: str) -> bool:
    """Unlink the unfinished run from ``flow_run_id`` (one that crashed) so that this caller alone starts it
    again: of several processes that saw the crash, exactly one gets True."""
    with session_scope() as s:
        done = s.execute(update(Run).where(Run.id == run_id, Run.prefect_flow_run_id == flow_run_id,
                                           Run.status.not_in(FINISHED)).values(prefect_flow_run_id=None)
                         .execution_options(synchronize_session=False))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def resolve_run_id(given: str) -> str:
    """The full id of the run whose id is ``given`` or starts with it (at least ``MIN_ID_PREFIX`` characters).

    Raises ``RunNotFoundError`` when none matches and ``AmbiguousRunIdError`` (listing them) when several do.
    """
    given = given.strip()
    with session_scope(readonly=True) as s:
        if s.get(Run, given) is not None:
            return given
        if len(given) < MIN_ID_PREFIX or not given.isalnum():
            raise RunNotFoundError(given)
        matches = list(s.scalars(select(Run.id).where(Run.id.startswith(given, autoescape=True))
                                 .order_by(Run.created_at.desc()).limit(10)))
    if not matches:
        raise RunNotFoundError(given)
    if len(matches) > 1:
        raise AmbiguousRunIdError(given, matches)
    return matches[0]


def find_completed_run(idempotency_key: str) -> RunView | None:
    """The newest completed run with this key, if any."""
    with session_scope(readonly=True) as s:
        # by the key's index alone, the status picked here: given both, SQLite used the status index and went
        # through every completed run (a few ms per run recorded, at 3,000 runs)
        found = s.execute(select(Run.id, Run.status, Run.finished_at)
                          .where(Run.idempotency_key == idempotency_key)).all()
        done = [row for row in found if row.status == "completed"]
        if not done:
            return None
        finished = [row for row in done if row.finished_at is not None]
        newest = max(finished, key=lambda row: row.finished_at) if finished else done[0]
        return run_view(_load(s, newest.id))


def list_runs(*, limit: int = 20, offset: int = 0, status: str | None = None, model: str | None = None,
              batch_id: str | None = None) -> tuple[list[RunView], int]:
    """A page of runs, newest first, and how many match (the gallery's query, ``listing.find_runs``)."""
    where = RunFilter(statuses=(status,) if status else (), model=model, batch_id=batch_id)
    return find_runs(where, limit=limit, offset=offset)


def mark_run(run_id: str, status: str, *, error: str | None = None, cost_usd: Decimal | None = None,
             prefect_flow_run_id: str | None = None) -> None:
    """Move a run to a new status and log it as an event; finished runs stay finished."""
    with session_scope() as s:
        run = _load(s, run_id)
        if run.status in FINISHED and status != run.status and not (run.status == "failed" and status == "running"):
            return
        run.status = status
        if prefect_flow_run_id:
            run.prefect_flow_run_id = prefect_flow_run_id
        if status == "running" and run.started_at is None:
            run.started_at = utcnow()
        if status == "running":
            run.error = None
        if status in FINISHED:
            run.finished_at = utcnow()
            run.error = error
            if status == "completed":
                run.progress = 1.0
            else:
                _close_open_steps(s, run_id, status, error)
        if cost_usd is not None:
            run.cost_usd = cost_usd
        s.add(Event(run_id=run_id, kind="status", message=status if not error else f"{status}: {error}",
                    progress=run.progress))


def _close_open_steps(s: Session, run_id: str, status: str, error: str | None) -> None:
    """A run ended without its executing process closing its steps (the process was killed, or Prefect ended the
    flow run): a step still ``running`` ends as the run did, so it does not show running for ever."""
    ended = f"the run ended {status}" + (f": {error}" if error else "")
    for step in s.scalars(select(Step).where(Step.run_id == run_id, Step.status == "running")):
        step.status, step.error, step.finished_at = status, ended, utcnow()
        step.slot_limit = step.slot_lease_id = None


def open_step(run_id: str, name: str, backend: str, *, prefect_task_run_id: str | None,
              endpoint: str | None = None) -> tuple[int, str | None]:
    """Start (or resume) the step ``name`` of a run. Returns its id and any provider job id already stored,
    so that a retry or a restart polls the job it already paid for instead of submitting again."""
    with session_scope() as s:
        step = s.scalars(
            select(Step).where(Step.run_id == run_id, Step.name == name, Step.status != "completed")
            .order_by(Step.id.desc()).limit(1)
        ).first()
        if step is None:
            step = Step(run_id=run_id, name=name, backend=backend, status="running",
                        prefect_task_run_id=prefect_task_run_id, provider_endpoint=endpoint)
            s.add(step)
        else:
            step.attempts += 1
            step.status = "running"
            step.error = None
            step.prefect_task_run_id = prefect_task_run_id or step.prefect_task_run_id
        s.flush()
        return step.id, step.provider_job_id


def finished_job(run_id: str, step_name: str) -> str | None:
    """The provider job of the latest completed attempt of this step: its output was not stored yet (a crash in
    between), so it is resumed rather than paid for again. A pipeline step whose outputs were stored is a finished
    render (an approval's redo renders it anew): none."""
    with session_scope() as s:
        row = s.execute(
            select(Step.provider_job_id, Step.detail).where(Step.run_id == run_id, Step.name == step_name,
                                                            Step.status == "completed", Step.provider_job_id != "")
            .order_by(Step.id.desc()).limit(1)
        ).first()
        return None if row is None or "outputs" in (row.detail or {}) else row.provider_job_id


def set_step_job(step_id: int, provider_job_id: str, *, endpoint: str | None = None) -> None:
    """Record the provider's job id; called the moment submit returns (or before, for client-chosen ids)."""
    with session_scope() as s:
        step = s.get(Step, step_id)
        assert step is not None
        step.provider_job_id = provider_job_id
        if endpoint:
            step.provider_endpoint = endpoint


def set_step_lease(step_id: int, limit: str, lease_id: str, *, message: str) -> None:
    """Record the concurrency slot the step holds (its lease id, so ``reelflow resume`` can free it) and the
    "slot" event ``message``: one write, as a job that was just handed a slot waits for it to start."""
    with session_scope() as s:
        step = s.get(Step, step_id)
        assert step is not None
        step.slot_limit, step.slot_lease_id = limit, lease_id
        s.add(Event(run_id=step.run_id, kind="slot", message=message, step=step.name, data={"limit": limit}))


def held_leases(run_id: str) -> list[str]:
    """Lease ids of the slots held by the run's steps that never closed (their process died)."""
    with session_scope(readonly=True) as s:
        return list(s.scalars(select(Step.slot_lease_id).where(Step.run_id == run_id,
                                                               Step.slot_lease_id.is_not(None))))


def close_step(step_id: int, status: str, *, cost_usd: Decimal | None = None, error: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
    """End the step; its slot was given back as its job ended, so no lease stays recorded."""
    with session_scope() as s:
        step = s.get(Step, step_id)
        assert step is not None
        step.status = status
        step.slot_limit = step.slot_lease_id = None
        step.finished_at = utcnow()
        step.error = error
        if cost_usd is not None:
            step.cost_usd = cost_usd
        if detail is not None:
            step.detail = detail


def _output_row(run_id: str, step_id: int | None, stored: StoredObject, produced: ProviderOutput) -> Output:
    return Output(run_id=run_id, step_id=step_id, role=produced.role, key=stored.key, path=stored.path,
                  url=stored.url, sha256=stored.sha256, bytes=stored.bytes, content_type=stored.content_type,
                  width=produced.width, height=produced.height, fps=produced.fps, frames=produced.frames,
                  duration_s=produced.duration_s)


def add_output(run_id: str, step_id: int | None, stored: StoredObject, produced: ProviderOutput) -> OutputView:
    """Record a stored output; recording the same object in the same role again (a retried step) is a no-op."""
    with session_scope() as s:
        row = s.scalars(select(Output).where(Output.run_id == run_id, Output.role == produced.role,
                                             Output.key == stored.key).limit(1)).first()
        if row is not None:
            return OutputView.model_validate(row, from_attributes=True)
        row = _output_row(run_id, step_id, stored, produced)
        s.add(row)
        s.flush()
        return OutputView.model_validate(row, from_attributes=True)


def add_event(run_id: str, kind: str, message: str = "", *, step: str | None = None,
              progress: float | None = None, data: dict[str, Any] | None = None) -> int:
    with session_scope() as s:
        if progress is not None:
            run = s.get(Run, run_id)
            if run is not None:
                run.progress = progress
        event = Event(run_id=run_id, kind=kind, message=message, step=step, progress=progress, data=data)
        s.add(event)
        s.flush()
        return event.id


def latest_event_id() -> int:
    with session_scope(readonly=True) as s:
        return s.scalar(select(func.max(Event.id))) or 0


def events_after(run_id: str | None, after_id: int = 0, limit: int = 500) -> list[EventView]:
    with session_scope(readonly=True) as s:
        query = select(Event).where(Event.id > after_id)
        if run_id:
            query = query.where(Event.run_id == run_id)
        rows = s.scalars(query.order_by(Event.id).limit(limit)).all()
        return [EventView.model_validate(e, from_attributes=True) for e in rows]
