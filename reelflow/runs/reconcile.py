"""Runs left queued or running by a process that died (SIGKILL, crash, reboot) are taken over, never left so.

``reconcile_orphans`` finds them (``store/owners.py``: the owner's pid is gone, or its heartbeat is stale),
claims each one atomically (of several processes reconciling at once, one wins), sets the old Prefect flow run to
Crashed (or the store to cancelled when Prefect has it cancelled) and frees the slots it held; then it starts the
run again under its own id: steps that finished keep their outputs and a provider job whose id was stored is
polled, never submitted again (a paid job is resumed, an unpaid one restarted). A run that cannot run any more
(its model is unavailable, its spec invalid) is failed with the reason. ``reelflow serve``, ``reelflow up`` and
every worker call it at start and every ``INTERVAL_S`` (``start_background``).

A run waiting in Prefect (Scheduled or Pending) for a worker is left alone: the worker's process will own it. A run
still queued whose flow run Prefect crashed or failed before the flow began (a worker that got 503 while submitting
it) is taken over too, even though the process that submitted it lives: no flow will ever record it running.
Whoever restarts a crashed flow run unlinks it first (``repo.take_flow_run``), so it is started again once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from reelflow.errors import ReelflowError
from reelflow.orchestration.prefect_server import ensure_api
from reelflow.runs.resume import check_resumable, mark_crashed, release_dead_slots
from reelflow.store import owners, repo

if TYPE_CHECKING:
    from reelflow.runs.launcher import Launcher

log = logging.getLogger("reelflow.runs")
INTERVAL_S = 30.0
WAITING_FOR_A_WORKER = frozenset({"SCHEDULED", "PENDING", "PAUSED"})
ENDED = frozenset({"CRASHED", "FAILED"})
BEFORE_START = "before the flow began"
RESTARTS_BEFORE_START = 3
STATES_PER_REQUEST = 200
Action = Literal["resumed", "restarted", "failed", "cancelled"]


@dataclass(frozen=True)
class Reconciled:
    run_id: str
    action: Action
    reason: str


async def _restart(run_id: str, spec: dict[str, Any], on_deployment: bool, launcher: Launcher | None,
                   *, reached_prefect: bool = True) -> None:
    """A run that never reached Prefect (its process died before starting it) goes where new runs go."""
    if launcher is not None and not on_deployment:
        await launcher.astart(run_id, spec, via="local" if reached_prefect else None)
        return
    from reelflow.runs import dispatch

    await dispatch.trigger(repo.get_run(run_id), attempt=int(time.time()))


async def reconcile_run(orphan: owners.Orphan, launcher: Launcher | None = None) -> Reconciled | None:
    """Take over one orphaned run; None if it needs nothing (finished, waiting for a worker, taken by another)."""
    run = repo.find_run(orphan.run_id)
    if run is None or run.status not in owners.UNFINISHED:
        return None
    from reelflow.runs.dispatch import read_flow_run

    flow_run = await read_flow_run(run.prefect_flow_run_id)
    state = flow_run.state.type.value if flow_run is not None and flow_run.state is not None else None
    on_deployment = flow_run is not None and flow_run.deployment_id is not None
    if state in WAITING_FOR_A_WORKER and (on_deployment or state == "PAUSED"):
        return None
    if not owners.claim(run.run_id, orphan.owner):
        return None
    if state in ENDED and run.prefect_flow_run_id and not repo.take_flow_run(run.run_id, run.prefect_flow_run_id):
        return None  # another process started it again
    gone = (f"Prefect flow run {run.prefect_flow_run_id} ended {state.lower()} {BEFORE_START}"
            if state in ENDED and run.status == "queued" else
            f"the process that ran it ({orphan.owner or 'unknown'}) is gone")
    if state in ("CANCELLED", "CANCELLING"):
        repo.mark_run(run.run_id, "cancelled", error="cancelled")
        return Reconciled(run.run_id, "cancelled", f"{gone}; Prefect has it cancelled")
    await release_dead_slots(run.run_id)
    await mark_crashed(run.prefect_flow_run_id, note=f"{gone}; reelflow started the run again")
    try:
        check_resumable(run)
        if run.status == "queued" and _restarts_before_start(run.run_id) >= RESTARTS_BEFORE_START:
            raise ReelflowError(f"its flow runs crashed {RESTARTS_BEFORE_START + 1} times before the flow "
                                "began; see the worker's log")
    except ReelflowError as exc:
        reason = f"{gone} and it cannot be started again: {exc}"
        repo.mark_run(run.run_id, "failed", error=reason)
        return Reconciled(run.run_id, "failed", reason)
    paid = [s.provider_job_id for s in run.steps if s.provider_job_id and s.status != "completed"]
    action: Action = "resumed" if paid else "restarted"
    reason = (f"{gone}; resuming it, polling provider job {', '.join(paid)} (not submitted again)" if paid
              else f"{gone}; nothing was paid for, starting it again")
    repo.add_event(run.run_id, "reconcile", reason)
    try:
        await _restart(run.run_id, run.spec, on_deployment, launcher, reached_prefect=flow_run is not None)
    except ReelflowError as exc:  # trigger failures are recorded on the run by dispatch
        return Reconciled(run.run_id, "failed", f"{gone}; starting it again failed: {exc}")
    return Reconciled(run.run_id, action, reason)


def _restarts_before_start(run_id: str) -> int:
    return sum(e.kind == "reconcile" and BEFORE_START in e.message for e in repo.events_after(run_id))


async def crashed_before_start() -> list[owners.Orphan]:
    """Queued runs whose flow run Prefect has Crashed or Failed although the flow never recorded them running."""
    from reelflow.runs import prefect_rest

    queued = repo.queued_on_prefect()
    states: dict[str, str | None] = {}
    ids = [flow_run_id for _, _, flow_run_id in queued]
    for first in range(0, len(ids), STATES_PER_REQUEST):
        states.update(await prefect_rest.flow_run_states(ids[first:first + STATES_PER_REQUEST]))
    return [owners.Orphan(run_id, "queued", owner) for run_id, owner, flow_run_id in queued
            if states.get(flow_run_id) in ("CRASHED", "FAILED")]


async def _candidates() -> list[owners.Orphan]:
    found = owners.orphans()
    try:
        crashed = await crashed_before_start()
    except Exception as exc:  # the Prefect server is busy or away: the orphans can still be taken over
        log.info("could not ask Prefect about queued runs: %s", exc)
        crashed = []
    seen = {orphan.run_id for orphan in found}
    return found + [orphan for orphan in crashed if orphan.run_id not in seen]


async def reconcile_orphans(launcher: Launcher | None = None) -> list[Reconciled]:
    """Take over every orphaned run (and every queued one Prefect crashed before it began): here on ``launcher``
    (a local run), else through the deployment."""
    ensure_api()
    from reelflow.runs import approvals

    try:
        for run_id in await approvals.expire_suspended():
            log.warning("run %s: an approval's timeout passed while its deployment run was suspended", run_id)
    except Exception:  # the Prefect server is busy or away: the next round tries again
        log.exception("could not check suspended approvals for their timeout")
    done = []
    for orphan in await _candidates():
        try:
            found = await reconcile_run(orphan, launcher)
        except Exception:  # one run's trouble must not keep the others stale
            log.exception("could not reconcile run %s", orphan.run_id)
            continue
        if found is not None:
            log.warning("run %s %s: %s", found.run_id, found.action, found.reason)
            done.append(found)
    return done


def start_background(launcher: Launcher | None = None, interval_s: float = INTERVAL_S) -> threading.Event:
    """Reconcile now and then every ``interval_s`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                asyncio.run(reconcile_orphans(launcher))
            except Exception:
                log.exception("reconciling orphaned runs failed")
            if stop.wait(interval_s):
                return

    threading.Thread(target=loop, name="reelflow-reconcile", daemon=True).start()
    return stop
