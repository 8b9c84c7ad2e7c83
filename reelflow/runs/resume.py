"""Resuming a recorded run whose process died (crash, SIGKILL, reboot): ``reelflow resume RUN_ID``.

The run is executed again through ``video_pipeline`` under its own id: steps that finished keep their
outputs, and a provider job whose id was stored is polled again, never submitted a second time.
Prefect is imported only after ``ensure_api`` has chosen the server (Prefect reads it at import).
"""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

from reelflow.core.availability import require_runnable
from reelflow.core.spec import parse_spec
from reelflow.errors import RunNotResumableError
from reelflow.orchestration.prefect_server import ensure_api
from reelflow.runs.lock import run_lock
from reelflow.store import repo
from reelflow.store.views import RunView

RESUMABLE = frozenset({"queued", "running", "waiting", "failed"})  # waiting: at an approval, its process gone
CRASH_NOTE = "the process running this flow run died; `reelflow resume` continues the run in a new flow run"


async def release_dead_slots(run_id: str) -> None:
    """Concurrency slots the dead process held would otherwise stay taken until their leases expire."""
    from reelflow.orchestration.concurrency import release_lease

    for lease_id in repo.held_leases(run_id):
        with contextlib.suppress(Exception):
            await release_lease(lease_id)


async def mark_crashed(flow_run_id: str | None, note: str = CRASH_NOTE) -> None:
    """Set a flow run that is not final yet to Crashed, so the Prefect UI agrees that its process is gone."""
    if not flow_run_id:
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    async with get_client() as client:
        try:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return
        if flow_run.state is None or not flow_run.state.is_final():
            await client.set_flow_run_state(flow_run.id, Crashed(message=note), force=True)


def check_resumable(run: RunView) -> None:
    if run.status not in RESUMABLE and run.status != "completed":
        raise RunNotResumableError(f"run {run.run_id} was {run.status}; start it again with `reelflow run ... --force`")
    if "steps" not in run.spec:  # a pipeline run's spec is its definition, checked when it was recorded
        require_runnable(parse_spec(run.spec))


async def aresume(run_id: str) -> RunView:
    """Continue a queued, running or failed run whose process is gone; a completed run is returned as it is.

    Raises ``RunNotFoundError``, ``RunBusyError`` (a live process still works on it),
    ``RunNotResumableError`` (cancelled) or ``ModelUnavailableError`` (e.g. no FAL_KEY) before anything runs.
    """
    run = repo.get_run(run_id)
    if run.status == "completed":
        return run
    check_resumable(run)
    with run_lock(run_id):
        ensure_api()
        await release_dead_slots(run_id)
        await mark_crashed(run.prefect_flow_run_id)
        if "steps" in run.spec:
            from flows.pipeline_flow import pipeline_run

            await pipeline_run(run_id=run_id, return_state=True)
        else:
            from flows.video_pipeline import video_pipeline

            await video_pipeline(spec=run.spec, run_id=run_id, return_state=True)
    return repo.get_run(run_id)


def resume(run_id: str) -> RunView:
    """Blocking form of :func:`aresume`."""
    return asyncio.run(aresume(run_id))
