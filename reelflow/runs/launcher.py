"""Where a recorded run executes, for every caller (Python API, CLI, REST API): here or on a worker.

``execute_here`` runs the ``video_pipeline`` flow in the caller's event loop (``reelflow run``,
``reelflow.run``). A ``Launcher`` starts runs without waiting: as a ``video-pipeline`` deployment run
when ``via`` allows it and a worker is online (see ``reelflow.runs.dispatch``), else on a thread of this
process, at most ``max_parallel`` at once. ``start_soon`` does not even wait for Prefect: its dispatcher
(``reelflow.runs.dispatcher``) starts the run in the background, retried and watched. The REST API owns
one; ``process_launcher()`` is the Python API's. Every thread has its own event loop, so a render never
stalls the caller's loop. A cancel from any process goes through ``reelflow.runs.cancel``;
``Launcher.cancel`` stops only this process's runs (shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any

from reelflow.core.domain import Via
from reelflow.errors import ReelflowError
from reelflow.orchestration.prefect_server import ensure_api
from reelflow.runs.dispatcher import Dispatcher
from reelflow.store import repo

log = logging.getLogger("reelflow.runs")
PROCESS_PARALLEL = 32
"""Runs a script may have rendering at once in its own process; the provider limits pace them, not this."""


async def execute_here(run_id: str, spec: dict[str, Any], *, force: bool = False) -> None:
    """Execute the recorded run in this event loop and return when it has ended (completed, failed or
    cancelled); a run that ends without a result is recorded as failed, never left running."""
    try:
        ensure_api()
        if "steps" in spec:  # a pipeline run: its spec is its definition
            from flows.pipeline_flow import pipeline_run

            await pipeline_run(run_id=run_id, force=force, return_state=True)
        else:
            from flows.video_pipeline import video_pipeline

            await video_pipeline(spec=spec, run_id=run_id, force=force, return_state=True)
    except asyncio.CancelledError:
        repo.mark_run(run_id, "cancelled", error="cancelled")
        raise
    except ReelflowError as exc:
        repo.mark_run(run_id, "failed", error=str(exc))
        raise
    finally:
        left = repo.find_run(run_id)
        if left is not None and left.status in ("queued", "running"):
            repo.mark_run(run_id, "failed", error="the run ended without a result; see the Prefect logs")


class Launcher:
    """Starts recorded runs in the background and cancels them; at most ``max_parallel`` local ones at once.

    ``via``: ``local`` always renders here; ``auto`` hands a run to the deployment when a worker is online;
    ``deployment`` always does. ``start``/``astart`` may override it per run. ``detach``: a run rendered "here"
    renders in a detached child process instead (``reelflow.runs.detached``), which outlives this one.
    """

    def __init__(self, max_parallel: int = 4, via: Via = "local", detach: bool = False) -> None:
        self.via = via
        self.detach = detach
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="reelflow-run")
        self._active: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self._futures: dict[str, Future[None]] = {}
        self._registered_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._dispatcher = Dispatcher(self)

    def start_soon(self, run_id: str, spec: dict[str, Any], *, force: bool = False, via: Via | None = None,
                   retry_id: str | None = None) -> None:
        """Start the recorded run in the background and return at once (the REST API's way): a busy or
        restarting Prefect server delays the start, it does not fail it (see ``reelflow.runs.dispatcher``)."""
        self._dispatcher.dispatch(run_id, spec, force=force, via=via, retry_id=retry_id)

    def start(self, run_id: str, spec: dict[str, Any], *, force: bool = False, via: Via | None = None,
              retry_id: str | None = None) -> None:
        """``astart`` for code outside an event loop."""
        asyncio.run(self.astart(run_id, spec, force=force, via=via, retry_id=retry_id))

    async def astart(self, run_id: str, spec: dict[str, Any], *, force: bool = False, via: Via | None = None,
                     retry_id: str | None = None, patience_s: float | None = None) -> str | None:
        """Start the run here or as a deployment run (returns its flow run id; None: started here).

        ``retry_id`` names a retry request, which gets a flow run of its own; ``patience_s`` is how long a busy
        Prefect server is retried (see ``dispatch.trigger``). A pipeline run goes to the ``pipeline-run``
        deployment, a one-video run to ``video-pipeline``."""
        if (via or self.via) != "local" and (
                flow_run_id := await self._trigger(run_id, spec, force, via or self.via, retry_id, patience_s)):
            return flow_run_id
        if self.detach:
            from reelflow.runs import detached

            await asyncio.to_thread(detached.start, run_id, force=force)
            return None
        with self._lock:
            self._registered_events[run_id] = threading.Event()
            future = self._pool.submit(self._work, run_id, spec, force)
            self._futures[run_id] = future
        future.add_done_callback(lambda done: self._forget(run_id, done))
        return None

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until the run's thread here is done (its render stopped); raises TimeoutError."""
        with self._lock:
            future = self._futures.get(run_id)
        if future is not None:
            future.result(timeout)

    def _forget(self, run_id: str, done: Future[None]) -> None:
        with self._lock:
            if self._futures.get(run_id) is done:
                del self._futures[run_id]
                self._registered_events.pop(run_id, None)

    async def _trigger(self, run_id: str, spec: dict[str, Any], force: bool, via: Via, retry_id: str | None,
                       patience_s: float | None) -> str | None:
        """Create a deployment run for the recorded run when ``via`` says so (its id); None means render here."""
        ensure_api()  # before Prefect is imported: it settles on its server at import
        from reelflow.runs import dispatch

        try:
            where = await dispatch.resolve_via(via, dispatch.deployment_of(spec))
        except Exception:  # the Prefect API did not answer: "auto" still renders here
            if via != "auto":
                raise
            log.exception("cannot tell whether a worker is online; rendering run %s here", run_id)
            return None
        if where != "deployment":
            return None
        return await dispatch.trigger(repo.get_run(run_id), force=force, retry_id=retry_id, patience_s=patience_s)

    def cancel(self, run_id: str) -> bool:
        """Stop the run if it is queued or rendering here (False if this process does not have it); other
        processes' runs are cancelled through ``reelflow.runs.cancel``."""
        return self.drop_queued(run_id) or self._interrupt(run_id)

    def drop_queued(self, run_id: str) -> bool:
        """Take the run out of this launcher's queue if it has not started rendering; True if it was dropped."""
        with self._lock:
            future = self._futures.get(run_id)
        return future is not None and future.cancel()

    def _interrupt(self, run_id: str, wait_s: float = 0.0) -> bool:
        found = self._registered(run_id, wait_s)
        if found is None:
            return False
        loop, task = found
        loop.call_soon_threadsafe(task.cancel)
        return True

    def _registered(self, run_id: str, wait_s: float) -> tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None:
        """The run's loop and task once its thread has started it (waiting up to ``wait_s`` for that)."""
        with self._lock:
            registered = self._registered_events.get(run_id)
        if registered is not None:
            registered.wait(wait_s)
        with self._lock:
            return self._active.get(run_id)

    def active(self) -> list[str]:
        with self._lock:
            return list(self._active)

    def shutdown(self) -> None:
        self._dispatcher.stop()
        for run_id in self.active():
            self.cancel(run_id)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _work(self, run_id: str, spec: dict[str, Any], force: bool) -> None:
        run = repo.find_run(run_id)
        try:
            if run is None or run.status in ("completed", "cancelled"):
                return
            asyncio.run(self._execute(run_id, spec, force))
        except (ReelflowError, asyncio.CancelledError):
            pass  # recorded by execute_here
        except BaseException as exc:  # a worker thread must never die silently
            log.exception("run %s stopped", run_id)
            repo.mark_run(run_id, "failed", error=f"the run stopped unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                registered = self._registered_events.get(run_id)
            if registered is not None:
                registered.set()  # nothing to wait for any more

    async def _execute(self, run_id: str, spec: dict[str, Any], force: bool) -> None:
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            self._active[run_id] = (asyncio.get_running_loop(), task)
            registered = self._registered_events.get(run_id)
        if registered is not None:
            registered.set()
        try:
            current = repo.find_run(run_id)
            if current is None or current.status == "cancelled":  # cancelled before it was registered
                return
            await execute_here(run_id, spec, force=force)
        finally:
            with self._lock:
                self._active.pop(run_id, None)


@cache
def process_launcher() -> Launcher:
    """The Python API's launcher: a run it renders "here" renders in a detached child, so a script may submit
    and exit at once."""
    return Launcher(max_parallel=PROCESS_PARALLEL, via="auto", detach=True)
