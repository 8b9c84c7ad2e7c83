"""What the store says about GPU work: runs in flight on a GPU backend, and when a GPU step last finished."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from reelflow.core.domain import GPU_BACKENDS
from reelflow.store.db import session_scope
from reelflow.store.models import Event, Run, Step

IN_FLIGHT = ("queued", "running")


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class RunActivity:
    run_id: str
    status: str
    last_activity: datetime


def gpu_runs_in_flight() -> list[RunActivity]:
    """Queued or running GPU-backend runs with the time of their latest event."""
    with session_scope() as s:
        latest = (select(Event.run_id, func.max(Event.created_at).label("at")).group_by(Event.run_id).subquery())
        rows = s.execute(
            select(Run.id, Run.status, Run.created_at, latest.c.at)
            .outerjoin(latest, latest.c.run_id == Run.id)
            .where(Run.backend.in_(GPU_BACKENDS), Run.status.in_(IN_FLIGHT))
        ).all()
    return [RunActivity(run_id, status, max(d for d in (_aware(created), _aware(at)) if d is not None))
            for run_id, status, created, at in rows]


def split_stale(runs: list[RunActivity], now: datetime, window: timedelta) -> tuple[list[RunActivity],
                                                                                   list[RunActivity]]:
    """Live runs, and runs silent for longer than ``window`` (their process died; they hold no GPU job)."""
    live = [r for r in runs if now - r.last_activity <= window]
    return live, [r for r in runs if now - r.last_activity > window]


def last_gpu_step_finish(endpoints: list[str]) -> datetime | None:
    """When a GPU step on one of these endpoint URLs last finished."""
    if not endpoints:
        return None
    with session_scope() as s:
        found = s.scalar(select(func.max(Step.finished_at)).where(
            Step.backend.in_(GPU_BACKENDS), Step.provider_endpoint.in_(endpoints)))
    return _aware(found)
