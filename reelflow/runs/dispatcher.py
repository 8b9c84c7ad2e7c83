"""Starting recorded runs in the background, so that recording a run (``POST /api/runs``) never waits for Prefect.

A ``Dispatcher`` owns one daemon thread with its own event loop. ``dispatch`` hands it a run that the store already
has as ``queued`` and returns at once; the loop then starts it through its launcher (here, or as a deployment
run), riding out a busy or restarting Prefect server for ``START_PATIENCE_S`` (``dispatch.trigger``). A run handed
to the deployment is watched while the store still has it ``queued``: when Prefect crashes its flow run before the
flow began (a worker that got 503 "database is locked" while submitting it), it is started again in a new flow run,
``CRASH_RESTARTS`` times at most; when Prefect ends it otherwise, the store follows (``dispatch.reconcile``). Once
the flow records the run ``running``, its process owns it and ``reelflow.runs.reconcile`` covers it. A run this
process recorded but never dispatched (the process died) is found by ``reconcile`` too: its owner is gone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from reelflow.core.domain import Via
from reelflow.errors import ReelflowError
from reelflow.store import repo

log = logging.getLogger("reelflow.runs")
START_PATIENCE_S = 600.0
WATCH_EVERY_S = 2.0
CRASH_RESTARTS = 3
STATES_PER_REQUEST = 200


class Starter(Protocol):
    """What starts a run here or as a deployment run (``Launcher.astart``); a flow run id, or None if here."""

    async def astart(self, run_id: str, spec: dict[str, Any], *, force: bool = False, via: Via | None = None,
                     retry_id: str | None = None, patience_s: float | None = None) -> str | None: ...


@dataclass
class _Watched:
    flow_run_id: str
    force: bool
    restarts: int = 0


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_forever()
    loop.close()


async def _close() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    asyncio.get_running_loop().stop()


class Dispatcher:
    """Starts runs for ``launcher`` on a background event loop (see the module docstring)."""

    def __init__(self, launcher: Starter) -> None:
        self._launcher = launcher
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[str, _Watched] = {}
        self._starting: set[Future[None]] = set()

    def dispatch(self, run_id: str, spec: dict[str, Any], *, force: bool = False, via: Via | None = None,
                 retry_id: str | None = None) -> None:
        """Start the recorded run in the background; returns at once. Failures are recorded on the run."""
        future = asyncio.run_coroutine_threadsafe(self._start(run_id, spec, force, via, retry_id), self._running())
        with self._lock:
            self._starting.add(future)
        future.add_done_callback(self._started)

    def pending(self) -> int:
        """How many runs are being started now (not yet handed to a worker or a thread here)."""
        with self._lock:
            return len(self._starting)

    def stop(self) -> None:
        """Stop starting and watching; a run not started yet stays queued for ``reelflow.runs.reconcile``."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is not None:
            asyncio.run_coroutine_threadsafe(_close(), loop)

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=_serve, args=(self._loop,), name="reelflow-dispatch", daemon=True).start()
                asyncio.run_coroutine_threadsafe(self._watch(), self._loop)
            return self._loop

    def _started(self, future: Future[None]) -> None:
        with self._lock:
            self._starting.discard(future)

    async def _start(self, run_id: str, spec: dict[str, Any], force: bool, via: Via | None,
                     retry_id: str | None) -> None:
        try:
            flow_run_id = await self._launcher.astart(run_id, spec, force=force, via=via, retry_id=retry_id,
                                                      patience_s=START_PATIENCE_S)
        except ReelflowError as exc:  # dispatch.trigger recorded it on the run
            log.warning("run %s could not be started: %s", run_id, exc)
            return
        except Exception as exc:
            log.exception("run %s could not be started", run_id)
            repo.mark_run(run_id, "failed", error=f"could not start the run: {type(exc).__name__}: {exc}")
            return
        if flow_run_id is not None:
            self._watched[run_id] = _Watched(flow_run_id, force)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            if not self._watched:
                continue
            try:
                await self._check()
            except httpx.HTTPError as exc:  # the server is busy or away: ask again next time
                log.info("checking queued flow runs: %s", exc)
            except Exception:
                log.exception("checking queued flow runs failed")

    async def _check(self) -> None:
        from reelflow.runs import dispatch, prefect_rest

        statuses = repo.run_statuses(list(self._watched))
        for run_id in [r for r in self._watched if statuses.get(r) != "queued"]:
            del self._watched[run_id]  # the flow has it (or it ended): its process owns it now
        ids = [w.flow_run_id for w in self._watched.values()]
        states: dict[str, str | None] = {}
        for first in range(0, len(ids), STATES_PER_REQUEST):
            states.update(await prefect_rest.flow_run_states(ids[first:first + STATES_PER_REQUEST]))
        for run_id, watched in list(self._watched.items()):
            state = states.get(watched.flow_run_id)
            if state == "CRASHED" and watched.restarts < CRASH_RESTARTS:
                if not repo.take_flow_run(run_id, watched.flow_run_id):  # reconcile started it again
                    del self._watched[run_id]
                    continue
                watched.restarts += 1
                repo.add_event(run_id, "retry", f"Prefect flow run {watched.flow_run_id} crashed before the flow "
                                                f"started; starting it again ({watched.restarts}/{CRASH_RESTARTS})")
                try:
                    watched.flow_run_id = await dispatch.trigger(repo.get_run(run_id), force=watched.force,
                                                                 attempt=watched.restarts,
                                                                 patience_s=START_PATIENCE_S)
                except ReelflowError:
                    del self._watched[run_id]
            elif state in dispatch.PREFECT_END:
                await dispatch.reconcile(repo.get_run(run_id))
                del self._watched[run_id]
