"""Runs started by the API: as a ``video-pipeline`` deployment run (when a worker is online and ``via``
allows it, see ``reelflow.runs.dispatch``) or on a worker thread of the server process.

Every local worker thread has its own event loop, so a render never stalls the API's loop; a cancel reaches
the flow as ``asyncio.CancelledError`` (the flow then records the run as cancelled). A deployment run is
cancelled through Prefect, whose worker stops it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

from reelflow.errors import ReelflowError
from reelflow.orchestration.prefect_server import ensure_api
from reelflow.store import repo

log = logging.getLogger("reelflow.web")
Via = Literal["auto", "deployment", "local"]


class Launcher:
    """Starts recorded runs in the background and cancels them; at most ``max_parallel`` local ones at once.

    ``via``: ``local`` always renders here; ``auto`` hands a run to the deployment when a worker is online;
    ``deployment`` always does.
    """

    def __init__(self, max_parallel: int = 4, via: Via = "local") -> None:
        self.via = via
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="reelflow-run")
        self._active: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def start(self, run_id: str, spec: dict[str, Any], *, force: bool = False) -> None:
        if self.via != "local" and self._trigger(run_id, force):
            return
        future = self._pool.submit(self._work, run_id, spec, force)
        with self._lock:
            self._futures[run_id] = future
        future.add_done_callback(lambda done: self._forget(run_id, done))

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the run's worker is done (its render stopped); raises TimeoutError."""
        with self._lock:
            future = self._futures.get(run_id)
        if future is not None:
            future.result(timeout)

    def _forget(self, run_id: str, done: Future[None]) -> None:
        with self._lock:
            if self._futures.get(run_id) is done:
                del self._futures[run_id]

    def _trigger(self, run_id: str, force: bool) -> bool:
        """Create a deployment run for the recorded run when ``via`` says so; False means render here."""
        from reelflow.runs import dispatch

        ensure_api()
        try:
            where = asyncio.run(dispatch.resolve_via(self.via))
        except Exception:  # the Prefect API did not answer: "auto" still renders here
            if self.via != "auto":
                raise
            log.exception("cannot tell whether a worker is online; rendering run %s here", run_id)
            return False
        if where != "deployment":
            return False
        asyncio.run(dispatch.trigger(repo.get_run(run_id), force=force))
        return True

    def cancel(self, run_id: str) -> bool:
        """Stop the run if it is rendering in this process, or ask Prefect to cancel its deployment run."""
        with self._lock:
            found = self._active.get(run_id)
        if found is None:
            return self._cancel_remote(run_id)
        loop, task = found
        loop.call_soon_threadsafe(task.cancel)
        return True

    def _cancel_remote(self, run_id: str) -> bool:
        run = repo.find_run(run_id)
        if self.via == "local" or run is None or not run.prefect_flow_run_id:
            return False
        from reelflow.runs import dispatch

        asyncio.run(dispatch.cancel_flow_run(run.prefect_flow_run_id))
        return True

    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def shutdown(self) -> None:
        for run_id in self.active():
            self.cancel(run_id)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _work(self, run_id: str, spec: dict[str, Any], force: bool) -> None:
        run = repo.find_run(run_id)
        if run is None or run.status in ("completed", "cancelled"):
            return
        try:
            ensure_api()
            asyncio.run(self._execute(run_id, spec, force))
        except ReelflowError as exc:
            repo.mark_run(run_id, "failed", error=str(exc))
        except BaseException as exc:  # a worker thread must never die silently
            log.exception("run %s stopped", run_id)
            repo.mark_run(run_id, "failed", error=f"the run stopped unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            left = repo.find_run(run_id)
            if left is not None and left.status in ("queued", "running"):
                repo.mark_run(run_id, "failed", error="the run ended without a result; see the server log")

    async def _execute(self, run_id: str, spec: dict[str, Any], force: bool) -> None:
        from flows.video_pipeline import video_pipeline

        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._active[run_id] = (asyncio.get_running_loop(), task)
        try:
            current = repo.find_run(run_id)
            if current is None or current.status == "cancelled":  # cancelled before it was registered
                return
            await video_pipeline(spec=spec, run_id=run_id, force=force, return_state=True)
        except asyncio.CancelledError:
            repo.mark_run(run_id, "cancelled", error="cancelled")
        finally:
            with self._lock:
                self._active.pop(run_id, None)
