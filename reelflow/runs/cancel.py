"""Cancelling a run from any process, whichever process executes it (``reelflow run``, ``serve``, a worker).

The canceller records a ``cancel_requested`` event in the store (shared by every process of one REELFLOW_HOME)
and sets the Prefect flow run Cancelling. The process executing the run runs ``watch`` beside the flow: on
either signal (the event, or Cancelling/Cancelled set by anyone, e.g. the Prefect UI) it cancels the flow's
task, so the provider job's ``cancel`` runs (ComfyUI /interrupt, fal cancel, SwarmUI interrupt), the slot is
released and the run ends cancelled in the store and in Prefect. The canceller waits, bounded, for that end.

A ``retry`` event starts a new attempt of the run: requests before it belong to the attempt it replaced.
Prefect is imported in the functions that need it, once ``ensure_api`` has chosen the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

from reelflow.orchestration.prefect_server import ensure_api
from reelflow.runs import events
from reelflow.store import repo
from reelflow.store.views import RunView

CANCEL_REQUESTED = "cancel_requested"
RETRY = "retry"
STORE_POLL_S = 0.25
PREFECT_POLL_S = 1.0
WAIT_POLL_S = 0.25
RECONCILE_EVERY_S = 1.0
PREFECT_SETTLE_S = 5.0
PAGE = 500


class Queue(Protocol):
    """A launcher whose queued, not yet started runs can be dropped (``reelflow.runs.launcher.Launcher``)."""

    def drop_queued(self, run_id: str) -> bool: ...


def pending_request(run_id: str, after_id: int = 0, requested: bool = False) -> tuple[bool, int]:
    """Whether a cancel was requested for the run's current attempt, reading events after ``after_id`` (whose
    verdict was ``requested``); returns the verdict and the last event id read."""
    while True:
        page = repo.events_after(run_id, after_id, limit=PAGE)
        for event in page:
            if event.kind == CANCEL_REQUESTED:
                requested = True
            elif event.kind == RETRY:
                requested = False
        if page:
            after_id = page[-1].id
        if len(page) < PAGE:
            return requested, after_id


async def _prefect_cancelling(flow_run_id: str) -> bool:
    from prefect.client.schemas.objects import StateType

    from reelflow.runs.dispatch import flow_run_state

    try:
        return await flow_run_state(flow_run_id) in (StateType.CANCELLING, StateType.CANCELLED)
    except Exception:  # a server that does not answer now may answer at the next poll
        return False


async def watch(run_id: str, flow_run_id: str | None, task: asyncio.Task[object]) -> None:
    """Cancel ``task`` (the flow executing the run) once a cancel is requested in the store or in Prefect."""
    requested, seen = pending_request(run_id)
    next_prefect = time.monotonic()
    while not requested:
        if flow_run_id and time.monotonic() >= next_prefect:
            if await _prefect_cancelling(flow_run_id):
                break
            next_prefect = time.monotonic() + PREFECT_POLL_S
        await asyncio.sleep(STORE_POLL_S)
        requested, seen = pending_request(run_id, seen, requested)
    events.emit(run_id, "cancel", "cancel request received: stopping the provider job")
    task.cancel()


async def cancel_run(run_id: str, timeout: float, *, here: Queue | None = None) -> RunView:  # noqa: ASYNC109
    """Ask for the run to be cancelled and wait up to ``timeout`` s for it to end; returns the run as it is then
    (``cancelled``, or how it ended if it finished first, or still ``running`` if its process did not answer)."""
    ensure_api()
    from reelflow.runs import dispatch

    events.emit(run_id, CANCEL_REQUESTED, "cancel requested")
    if here is not None and here.drop_queued(run_id):
        repo.mark_run(run_id, "cancelled", error="cancelled before it started")
    deadline = time.monotonic() + timeout
    run = repo.get_run(run_id)
    if run.prefect_flow_run_id and run.status not in repo.FINISHED:
        with contextlib.suppress(Exception):  # the executing process still sees the store's request
            await dispatch.cancel_flow_run(run.prefect_flow_run_id)
    run = await await_end(run_id, timeout)
    if run.status == "cancelled" and run.prefect_flow_run_id:
        await _settle_flow_run(run.prefect_flow_run_id, max(PREFECT_SETTLE_S, deadline - time.monotonic()))
    return run


async def _settle_flow_run(flow_run_id: str, wait_s: float) -> None:
    """The store says cancelled: wait for the executing flow to report Cancelled, and set it if it does not (its
    process was killed before it could), so that Prefect shows the same end."""
    from reelflow.runs import dispatch

    with contextlib.suppress(Exception):  # a server that does not answer keeps its state; reconcile is the store's
        if await dispatch.await_flow_run_end(flow_run_id, wait_s) not in dispatch.FINAL:
            await dispatch.cancel_flow_run(flow_run_id, force_cancelled=True)


async def await_end(run_id: str, timeout: float) -> RunView:  # noqa: ASYNC109
    """Poll the store until the run has ended, reconciling with its Prefect flow run (a worker that killed the
    flow's process records the end only there); returns the run as it is after ``timeout`` s at most."""
    ensure_api()
    from reelflow.runs import dispatch

    deadline = time.monotonic() + timeout
    next_reconcile = time.monotonic()
    while True:
        run = repo.get_run(run_id)
        if run.status not in repo.FINISHED and time.monotonic() >= next_reconcile:
            run = await dispatch.reconcile(run)
            next_reconcile = time.monotonic() + RECONCILE_EVERY_S
        if run.status in repo.FINISHED or time.monotonic() >= deadline:
            return run
        await asyncio.sleep(WAIT_POLL_S)
