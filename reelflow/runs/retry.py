"""Retrying a run: a failed run runs again under its own id, in a new flow run each time it is asked (its paid
provider jobs are resumed by their stored ids); a cancelled run is rendered afresh as a new run."""

from __future__ import annotations

import uuid

from reelflow.runs import events
from reelflow.runs.cancel import RETRY
from reelflow.runs.launcher import Launcher
from reelflow.runs.prepare import prepare_run
from reelflow.store import repo
from reelflow.store.views import RunView

RETRYABLE = frozenset({"failed", "cancelled"})


def not_retryable(run: RunView) -> str | None:
    """Why the run cannot be retried, or None."""
    if run.status in RETRYABLE:
        return None
    return f"run {run.run_id} is {run.status}; only failed or cancelled runs can be retried"


def retry_run(run: RunView, launcher: Launcher, *, background: bool = False) -> RunView:
    """Start the retry (see the module docstring) and return the run that renders it, without waiting for it to
    render. ``background``: return once the retry is recorded and let the launcher's dispatcher start it (the
    REST API's way: a busy Prefect server delays the start, not the answer)."""
    start = launcher.start_soon if background else launcher.start
    if run.status == "cancelled":
        prepared = prepare_run(run.spec, force=True, batch_id=run.batch_id)
        start(prepared.run.run_id, prepared.run.spec, force=True)
        return prepared.run
    retry_id = uuid.uuid4().hex[:12]
    events.emit(run.run_id, RETRY, f"retry {retry_id} requested", data={"retry_id": retry_id})
    repo.mark_run(run.run_id, "running")
    start(run.run_id, run.spec, retry_id=retry_id)
    return repo.get_run(run.run_id)
