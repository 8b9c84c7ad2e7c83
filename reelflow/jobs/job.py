"""The one shape of a paid provider job (fal, ComfyUI, SwarmUI) and ``run_job``, which pays for it exactly once.

``await run_job(step, job)``:

- The step has a stored id (a task retry, a flow retry, ``reelflow resume`` after kill -9): ``job.resume(id)``
  rebuilds the handle from that id (as fal-client's ``AsyncRequestHandle.from_request_id``) and it is waited on;
  nothing is submitted.
- Otherwise ``job.prepare()`` does the free work (checks, uploads), then ``job.submit()`` sends it once, and its
  id is in the store before ``job.wait()`` starts. An id the job chooses itself (``mint_id``: ComfyUI, SwarmUI)
  is stored before the request is even sent.
- ``wait()`` returns the result, or None when the job ended without one and the job decided a new attempt may
  start (a lost job the endpoint allows to be resubmitted, a ComfyUI out-of-memory error): then it is submitted
  again. Each ``wait`` is bounded by the job's deadline and reports progress to the step.
- The run cancelled (task cancellation, or the SIGTERM a Prefect runner sends to cancel the run): a submit in
  flight is let finish, so its id is stored, then ``job.cancel()`` stops the provider's job. The runner records
  its cancel intent in this process before the SIGTERM; Prefect raises the signal wherever the main thread is,
  and inside an asyncio socket write it is only logged, so a watcher also turns that intent into a task
  cancellation (``_watch_cancel_intent``). The stop outlasts the SIGTERM's own teardown (``_outlast_cancellation``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar, Generic, TypeVar

from prefect.exceptions import TerminationSignal

from reelflow.jobs.cancel_signal import cancel_intent, run_cancelled
from reelflow.jobs.step import Step

ResultT = TypeVar("ResultT")
T = TypeVar("T")
log = logging.getLogger(__name__)


class ProviderJob(ABC, Generic[ResultT]):
    """One job at one provider; ``job_id`` is the provider's id once minted, submitted or resumed."""

    provider: ClassVar[str]
    cancel_timeout_s: ClassVar[float] = 15.0
    endpoint: str
    job_id: str | None = None

    async def prepare(self) -> None:
        """Free work before a submit (checks, uploads): nothing is stored until it succeeds."""

    def mint_id(self) -> str | None:
        """An id chosen before submit (stored first, then sent with the request); None when the provider assigns it."""
        return None

    @abstractmethod
    async def submit(self) -> str:
        """Send the job once (under ``job_id`` when minted) and return the provider's id."""

    def resume(self, job_id: str) -> None:
        """Rebuild the handle of a job submitted earlier, maybe by another process, from its stored id."""
        self.job_id = job_id

    @abstractmethod
    async def wait(self) -> ResultT | None:
        """Wait for ``job_id`` within the deadline; None when it ended without a result and may be submitted again."""

    @abstractmethod
    async def cancel(self) -> str:
        """Stop ``job_id`` at the provider; returns what was done, for the run's log."""


INTENT_POLL_S = 0.2


async def _watch_cancel_intent(job_task: asyncio.Task[object]) -> None:
    """Cancel ``job_task`` once the runner's cancel intent is recorded, whether or not its SIGTERM reached it."""
    while not cancel_intent():  # noqa: ASYNC110 (set by Prefect's listener thread: there is no event to await)
        await asyncio.sleep(INTENT_POLL_S)
    job_task.cancel()


async def run_job(step: Step, job: ProviderJob[ResultT]) -> ResultT:
    """Resume the step's stored job or submit a new one, and wait for its result (see the module docstring)."""
    submitting: asyncio.Future[str] | None = None
    current = asyncio.current_task()
    assert current is not None
    watcher = asyncio.create_task(_watch_cancel_intent(current))
    try:
        if step.provider_job_id:
            job.resume(step.provider_job_id)
            result = await job.wait()
        else:
            result = None
        while result is None:
            await job.prepare()
            submitting = asyncio.ensure_future(_submit(step, job))
            await asyncio.shield(submitting)
            result = await job.wait()
        return result
    except BaseException as exc:
        watcher.cancel()
        if run_cancelled(exc):
            await _cancel(step, job, submitting)
        raise
    finally:
        watcher.cancel()


async def _submit(step: Step, job: ProviderJob[ResultT]) -> str:
    minted = job.mint_id()
    if minted is not None:
        job.job_id = minted
        step.record_job(minted, job.endpoint)
    job_id = await job.submit()
    if job_id != minted:
        job.job_id = job_id
        step.record_job(job_id, job.endpoint)
    return job_id


async def _cancel(step: Step, job: ProviderJob[ResultT], submitting: asyncio.Future[str] | None) -> None:
    """Let a submit in flight finish (its id gets stored), then stop the job; the run is cancelled regardless."""
    deadline = asyncio.get_running_loop().time() + job.cancel_timeout_s
    try:
        if submitting is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):  # a minted id is stopped all the same
                await _outlast_cancellation(lambda: submitting, deadline, restart=False)
        if job.job_id is None:
            return
        done = await _outlast_cancellation(job.cancel, deadline, restart=True)
    except BaseException as exc:  # the run is being cancelled whatever happens here
        log.warning("could not cancel %s job %s: %r", job.provider, job.job_id, exc)
        return
    step.log(done)


async def _outlast_cancellation(start: Callable[[], Awaitable[T]], deadline: float, *, restart: bool) -> T:
    """Await ``start()`` to its end by ``deadline`` even if this task is cancelled again or interrupted meanwhile.

    The SIGTERM that follows a runner's cancel intent is raised wherever the main thread is: out of the event loop
    it ends ``asyncio.run``, which cancels every task once more, this one and the stop it awaits included. The loop
    runs until those tasks end, so the stop is awaited again, and ``restart``-ed when it was itself the one
    cancelled or interrupted (stopping twice is harmless; a submit cannot be restarted)."""
    loop = asyncio.get_running_loop()
    running: asyncio.Future[T] = asyncio.ensure_future(start())
    while True:
        if running.done():
            interrupted = running.cancelled() or isinstance(running.exception(), TerminationSignal)
            if not (interrupted and restart):
                return running.result()
            running = asyncio.ensure_future(start())
        remaining = deadline - loop.time()
        if remaining <= 0:
            if restart:  # a submit is left to finish: its answer may be the id of a paid job
                running.cancel()
            raise TimeoutError("not done by the cancel's deadline")
        with contextlib.suppress(asyncio.CancelledError, TerminationSignal):
            await asyncio.wait({running}, timeout=remaining)
