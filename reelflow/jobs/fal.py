"""One fal job inside a Prefect task, shared by ``generate_image`` and ``i2v_fal``.

A slot of the Prefect limit ``fal`` is held from submit to result (also while a resumed job is
polled). The request id is stored the moment submit returns, and a task retry, a flow retry or
``reelflow resume`` polls that request instead of paying for a new one; submit itself is never
retried. Queue position and fal's logs go to the run logs, a progress artifact and the store.
Cancelling the run cancels the fal request; past the model's deadline it is cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger
from prefect.exceptions import TerminationSignal

from reelflow.core.availability import require_available
from reelflow.core.catalog import ModelEntry
from reelflow.core.domain import ProviderOutput
from reelflow.errors import TransientProviderError
from reelflow.jobs.step import StepHandle, tracked_step
from reelflow.orchestration.concurrency import FAL_LIMIT, fal_slot
from reelflow.providers.fal import FalQueue, FalUpdate, InProgress, Queued
from reelflow.providers.fal.settings import get_fal_settings
from reelflow.runs import events
from reelflow.runs.lock import run_lock
from reelflow.store import repo

CANCEL_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 10.0
TYPICAL_S = {"t2i": 10.0, "i2v": 90.0}

_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FalQueue] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FalJob:
    run_id: str
    step: str
    model: ModelEntry
    cost_usd: float | None
    arguments: Callable[[], Awaitable[dict[str, Any]]]
    parse: Callable[..., ProviderOutput]  # (result, *, request_id) -> output


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only failures a later try may fix (the job id is kept).

    For an exception raised by the task, Prefect passes ``Failed(data=exception)``.
    """
    return isinstance(state.data, TransientProviderError)


class _Reporter:
    """Progress of one job to the Prefect run logs, the progress artifact and the store's events.

    Artifact and store writes go through a queue drained by a background task, so a slow Prefect
    API never delays noticing a finished job or handing its slot on.
    """

    def __init__(self, job: FalJob, step: StepHandle) -> None:
        self.job, self.step = job, step
        self.logger = get_run_logger()
        self.running_since: float | None = None
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._pump = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            fraction, message = await self._queue.get()
            try:
                await self.step.progress(fraction, message, force=True)
            except Exception as exc:  # progress is best effort; the job goes on
                self.logger.debug("progress not recorded: %r", exc)
            finally:
                self._queue.task_done()

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                await self._queue.join()
        self._pump.cancel()

    def _say(self, fraction: float, message: str, *, artifact: bool = True) -> None:
        """Log it, and record it: a store event always, the Prefect progress artifact at milestones."""
        self.logger.info(message)
        if artifact:
            self._queue.put_nowait((fraction, message))
        else:
            events.emit(self.job.run_id, "progress", message, step=self.job.step, progress=fraction)

    async def waiting(self) -> None:
        self._say(0.0, f"waiting for a free '{FAL_LIMIT}' slot (every slot is held by another fal job)")

    def submitted(self, request_id: str, resumed: bool) -> None:
        verb = "resuming" if resumed else "submitted"
        self._say(0.02, f"{verb} fal request {request_id} on {self.job.model.endpoint}")

    def update(self, update: FalUpdate) -> None:
        if isinstance(update, Queued):
            self._say(0.05, f"queued at fal, position {update.position}")
            return
        for line in update.new_logs:
            self.logger.info("fal: %s", line.message)
            self.step.log(f"fal: {line.message}")
        if isinstance(update, InProgress):
            now = time.monotonic()
            self.running_since = self.running_since or now
            typical = TYPICAL_S[self.job.model.kind]
            fraction = 0.1 + 0.8 * (1 - math.exp(-(now - self.running_since) / typical))
            first = self.running_since == now
            self._say(fraction, f"running on fal ({now - self.running_since:.0f} s)", artifact=first)
            return
        if update.error:
            self.logger.warning("fal reports: %s", update.error)
        self._say(0.95, "finished on fal; fetching the result", artifact=False)


def _finished_job(run_id: str, step_name: str) -> str | None:
    """The request of an earlier completed attempt of this step (its output was not stored yet)."""
    done = [s for s in repo.get_run(run_id).steps
            if s.name == step_name and s.status == "completed" and s.provider_job_id]
    return done[-1].provider_job_id if done else None


async def _submit(fal: FalQueue, step: StepHandle, endpoint: str, arguments: dict[str, Any]) -> str:
    request_id = await fal.submit(endpoint, arguments)
    step.record_job(request_id, endpoint)
    return request_id


def _run_cancelled(exc: BaseException) -> bool:
    """Task cancellation, or the SIGTERM a Prefect runner sends to cancel the flow run when it lands inside
    this task. Any other interruption (a crash, a plain SIGTERM) leaves the request for ``reelflow resume``."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    if not isinstance(exc, TerminationSignal):
        return False
    from prefect._internal.control_listener import get_intent

    return get_intent() == "cancel"


async def _cancel(fal: FalQueue, job: FalJob, submitting: asyncio.Future[str], logger: logging.Logger) -> None:
    """The run was cancelled: let a submit in flight finish (its id gets stored), then cancel the request."""
    try:
        async with asyncio.timeout(CANCEL_TIMEOUT_S):
            request_id = await asyncio.shield(submitting)
            await asyncio.shield(fal.cancel(job.model.endpoint, request_id))
    except BaseException as exc:
        logger.warning("could not cancel the fal request: %r", exc)
        return
    logger.info("cancelled fal request %s", request_id)
    events.emit(job.run_id, "log", f"cancelled fal request {request_id}", step=job.step)


def _queue() -> FalQueue:
    """One fal-client connection pool per event loop, kept open between jobs (no TLS handshake per job)."""
    loop = asyncio.get_running_loop()
    if loop not in _queues:
        _queues[loop] = FalQueue(retry=get_fal_settings().retry_policy())
    return _queues[loop]


async def _submit_and_wait(job: FalJob, step: StepHandle, reporter: _Reporter,
                           arguments: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    settings = get_fal_settings()
    endpoint = job.model.endpoint
    fal = _queue()
    if arguments is None:
        submitting: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        submitting.set_result(step.provider_job_id or "")
    else:
        submitting = asyncio.ensure_future(_submit(fal, step, endpoint, arguments))
    try:
        request_id = await asyncio.shield(submitting)
        reporter.submitted(request_id, resumed=arguments is None)
        result = await fal.wait(endpoint, request_id, on_update=reporter.update,
                                deadline_s=settings.deadline_for(job.model),
                                poll_interval_s=settings.poll_min_s, poll_max_s=settings.poll_max_s)
    except BaseException as exc:
        if _run_cancelled(exc):
            await _cancel(fal, job, submitting, reporter.logger)
        raise
    return result, request_id


async def run_fal_job(job: FalJob) -> ProviderOutput:
    """Run (or resume) ``job`` and return its parsed output, with the step's cost recorded."""
    require_available(job.model)
    with run_lock(job.run_id):
        async with tracked_step(job.run_id, job.step, "fal", endpoint=job.model.endpoint) as step:
            earlier = None if step.provider_job_id else _finished_job(job.run_id, job.step)
            if earlier:
                step.record_job(earlier, job.model.endpoint)
            arguments = None if step.provider_job_id else await job.arguments()
            reporter = _Reporter(job, step)
            try:
                async with fal_slot(step, reporter.waiting) as slot:
                    result, request_id = await _submit_and_wait(job, step, reporter, arguments)
            finally:
                await reporter.close()
            output = job.parse(result, request_id=request_id)
            step.cost_usd = job.cost_usd
            step.detail = {"request_id": request_id, "endpoint": job.model.endpoint,
                           "slot_wait_s": round(slot.waited_s, 3)}
            await step.progress(1.0, f"{job.step} done", force=True)
    return output.model_copy(update={"cost_usd": job.cost_usd, "provider_job_id": request_id})
