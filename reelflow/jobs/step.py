"""Bookkeeping shared by every task: one store step per task run, progress to the store and to Prefect."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.runtime import task_run

from reelflow.errors import ProviderCancelledError
from reelflow.jobs.cancel_signal import run_cancelled
from reelflow.runs import events
from reelflow.store import repo

log = logging.getLogger("reelflow.jobs")
PROGRESS_MIN_INTERVAL_S = 0.5
ARTIFACT_MIN_INTERVAL_S = 5.0
"""The Prefect progress artifact is updated less often than the store: each update is a write on its server."""
PIPELINE_STEP: ContextVar[str | None] = ContextVar("reelflow_pipeline_step", default=None)
"""The pipeline step being run (``shots[1]``), set by the pipeline flow around each of its steps."""


def step_name(task_name: str, *, auxiliary: bool = False) -> str:
    """The store step a task records into: its own name (``i2v_fal``) in a one-video run; in a pipeline run the
    pipeline step's id, or ``<step id>:<task name>`` for a task that serves it (``shots[1]:cache_r2:video``)."""
    pipeline_step = PIPELINE_STEP.get()
    if pipeline_step is None:
        return task_name
    return f"{pipeline_step}:{task_name}" if auxiliary else pipeline_step


def _artifact_key(run_id: str, name: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", f"progress-{run_id}-{name}".lower()).strip("-")


class Step(Protocol):
    """What a provider job needs from its store step (``StepHandle`` provides it)."""

    run_id: str
    name: str
    provider_job_id: str | None

    def record_job(self, job_id: str, endpoint: str | None = None) -> None: ...

    async def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None: ...

    def log(self, message: str, kind: str = "log") -> None: ...

    def record_lease(self, limit: str, lease_id: UUID, message: str) -> None: ...


@dataclass
class StepHandle:
    run_id: str
    name: str
    step_id: int
    provider_job_id: str | None
    cost_usd: Decimal | None = None
    detail: dict = field(default_factory=dict)
    _artifact_id: object | None = None
    _last_progress_at: float = 0.0
    _last_fraction: float = -1.0
    _last_artifact_at: float = 0.0

    def record_job(self, job_id: str, endpoint: str | None = None) -> None:
        """Persist the provider's job id now, before waiting on it: a retry or restart resumes it."""
        repo.set_step_job(self.step_id, job_id, endpoint=endpoint)
        self.provider_job_id = job_id

    def adopt_finished_job(self, endpoint: str | None = None) -> None:
        """Take over the job of an earlier completed attempt whose output was not stored yet (a crash in between),
        so it is resumed instead of paid for again."""
        if not self.provider_job_id and (earlier := repo.finished_job(self.run_id, self.name)):
            self.record_job(earlier, endpoint)
    def record_lease(self, limit: str, lease_id: UUID, message: str) -> None:
        """Persist the concurrency lease this step holds (``reelflow resume`` frees it if the process dies),
        with a "slot" event saying so."""
        repo.set_step_lease(self.step_id, limit, str(lease_id), message=message)

    async def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Report progress (0..1); throttled so long jobs do not flood the store or the Prefect API."""
        fraction = min(max(fraction, 0.0), 1.0)
        now = time.monotonic()
        if not force and fraction < 1.0 and now - self._last_progress_at < PROGRESS_MIN_INTERVAL_S:
            return
        self._last_progress_at, self._last_fraction = now, fraction
        events.emit(self.run_id, "progress", message or f"{self.name} {fraction:.0%}", step=self.name,
                    progress=fraction)
        if self._artifact_id is not None and fraction < 1.0 and now - self._last_artifact_at < ARTIFACT_MIN_INTERVAL_S:
            return
        self._last_artifact_at = now
        try:
            if self._artifact_id is None:
                self._artifact_id = await acreate_progress_artifact(
                    progress=fraction * 100, key=_artifact_key(self.run_id, self.name),
                    description=f"{self.name} progress for reelflow run {self.run_id}")
            else:
                await aupdate_progress_artifact(self._artifact_id, progress=fraction * 100)
        except Exception as exc:  # the store has the progress; a Prefect server restarting must not fail a paid job
            log.warning("could not update the Prefect progress artifact of %s: %s", self.name, exc)

    def log(self, message: str, kind: str = "log") -> None:
        events.emit(self.run_id, kind, message, step=self.name)


@asynccontextmanager
async def tracked_step(run_id: str, name: str, backend: str, endpoint: str | None = None, *,
                       auxiliary: bool = False) -> AsyncIterator[StepHandle]:
    """Open (or resume) the store step for this task (named by ``step_name``); close it with the outcome and the
    error text."""
    name = step_name(name, auxiliary=auxiliary)
    task_run_id = str(task_run.id) if task_run.id else None
    step_id, job_id = repo.open_step(run_id, name, backend, prefect_task_run_id=task_run_id, endpoint=endpoint)
    handle = StepHandle(run_id=run_id, name=name, step_id=step_id, provider_job_id=job_id)
    events.emit(run_id, "step", f"{name} started" + (f" (resuming job {job_id})" if job_id else ""), step=name)
    try:
        yield handle
    except asyncio.CancelledError:
        repo.close_step(step_id, "cancelled", error="cancelled")
        raise
    except ProviderCancelledError as exc:
        repo.close_step(step_id, "cancelled", error=str(exc), detail=handle.detail or None)
        events.emit(run_id, "step", f"{name} cancelled: {exc}", step=name)
        raise
    except Exception as exc:
        repo.close_step(step_id, "failed", error=str(exc) or type(exc).__name__, detail=handle.detail or None)
        events.emit(run_id, "step", f"{name} failed: {exc}", step=name)
        raise
    except BaseException as exc:
        if run_cancelled(exc):  # the SIGTERM a Prefect runner sends on Cancelling, landed in this step
            repo.close_step(step_id, "cancelled", error="cancelled in Prefect", detail=handle.detail or None)
            events.emit(run_id, "step", f"{name} cancelled in Prefect", step=name)
        raise
    repo.close_step(step_id, "completed", cost_usd=handle.cost_usd, detail=handle.detail or None)
    events.emit(run_id, "step", f"{name} completed", step=name)
