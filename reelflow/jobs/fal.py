"""``generate_image``'s and ``i2v_fal``'s job: one request on fal's queue, run by ``reelflow.jobs.job.run_job``.

A slot of the Prefect limit ``fal`` is held from submit to result (also while a resumed job is
polled). The request id is stored the moment submit returns, and a task retry, a flow retry or
``reelflow resume`` polls that request instead of paying for a new one; submit itself is never
retried (see ``reelflow.providers.fal.queue`` for the one retry layer on the other calls).
Queue position and fal's logs go to the run logs, a progress artifact and the store. Cancelling
the run cancels the fal request; past the model's deadline it is cancelled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from reelflow.core.availability import require_available
from reelflow.core.catalog import VIDEO_KINDS, ModelEntry, load_catalog
from reelflow.core.domain import ImageParams, MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ModelUnavailableError, SpecError, TransientProviderError
from reelflow.jobs.job import ProviderJob, run_job
from reelflow.jobs.local_steps import run_local_image
from reelflow.jobs.step import StepHandle, tracked_step
from reelflow.orchestration.concurrency import FAL_LIMIT, fal_slot
from reelflow.providers.fal import (
    FalQueue,
    FalUpdate,
    InProgress,
    Queued,
    RetryPolicy,
    build_arguments,
    fields_of,
    image_reference,
    parse_output,
)
from reelflow.runs import events
from reelflow.runs.lock import run_lock
from reelflow.settings import get_settings

CANCEL_TIMEOUT_S = 30.0
FLUSH_TIMEOUT_S = 10.0
TYPICAL_S = {"t2i": 10.0, "i2i": 10.0, "i2v": 90.0, "t2v": 90.0, "llm": 10.0}

_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FalQueue] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class FalRequest:
    run_id: str
    step: str
    model: ModelEntry
    cost_usd: Decimal | None
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

    def __init__(self, job: FalRequest, step: StepHandle) -> None:
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




def _queue() -> FalQueue:
    """One fal-client connection pool per event loop, kept open between jobs (no TLS handshake per job)."""
    loop = asyncio.get_running_loop()
    if loop not in _queues:
        fal = get_settings().fal
        _queues[loop] = FalQueue(retry=RetryPolicy(attempts=fal.retry_attempts, initial_s=fal.retry_initial_s))
    return _queues[loop]


class FalJob(ProviderJob[dict[str, Any]]):
    """One fal queue request; ``wait`` returns its result JSON. fal assigns the id, stored when submit returns."""

    provider = "fal"
    cancel_timeout_s = CANCEL_TIMEOUT_S

    def __init__(self, request: FalRequest, reporter: _Reporter, arguments: dict[str, Any] | None) -> None:
        self.request, self.reporter, self.arguments = request, reporter, arguments
        self.endpoint = request.model.endpoint
        self.queue = _queue()
        self._resumed = False

    def resume(self, job_id: str) -> None:
        super().resume(job_id)
        self._resumed = True

    async def submit(self) -> str:
        assert self.arguments is not None, "a fal job without arguments can only be resumed"
        return await self.queue.submit(self.endpoint, self.arguments)

    async def wait(self) -> dict[str, Any]:
        assert self.job_id is not None
        fal = get_settings().fal
        model = self.request.model
        self.reporter.submitted(self.job_id, resumed=self._resumed)
        return await self.queue.wait(self.endpoint, self.job_id, on_update=self.reporter.update,
                                     deadline_s=fal.deadline_s(model.id, model.kind),
                                     poll_interval_s=fal.poll_min_s, poll_max_s=fal.poll_max_s)

    async def cancel(self) -> str:
        assert self.job_id is not None
        await self.queue.cancel(self.endpoint, self.job_id)
        self.reporter.logger.info("cancelled fal request %s", self.job_id)
        return f"cancelled fal request {self.job_id}"


async def run_fal_job(request: FalRequest) -> ProviderOutput:
    """Run (or resume) ``request`` and return its parsed output, with the step's cost recorded."""
    require_available(request.model)
    with run_lock(request.run_id):
        async with tracked_step(request.run_id, request.step, "fal", endpoint=request.model.endpoint) as step:
            step.adopt_finished_job(request.model.endpoint)
            arguments = None if step.provider_job_id else await request.arguments()
            reporter = _Reporter(request, step)
            try:
                async with fal_slot(step, reporter.waiting) as slot:
                    job = FalJob(request, reporter, arguments)
                    result = await run_job(step, job)
            finally:
                await reporter.close()
            request_id = job.job_id
            output = request.parse(result, request_id=request_id)
            cost = request.cost_usd if output.cost_usd is None else output.cost_usd  # as billed, when fal says
            step.cost_usd = cost
            step.detail = {"request_id": request_id, "endpoint": request.model.endpoint,
                           "slot_wait_s": round(slot.waited_s, 3)}
            await step.progress(1.0, f"{request.step} done", force=True)
    return output.model_copy(update={"cost_usd": cost, "provider_job_id": request_id})


async def image_url(image: MediaRef) -> str:
    """An http(s) URL passes through; a local file goes inline as a data URI, or through fal's upload if large."""
    if image.url and image.url.startswith(("https://", "http://")):
        return image.url
    if image.path:
        data = await asyncio.to_thread(Path(image.path).read_bytes)
        return await image_reference(data, image.content_type, file_name=Path(image.path).name)
    raise SpecError("image", f"cannot send {image.describe()} to fal: not a local file or an http(s) URL")


def _parser(model: ModelEntry) -> Callable[..., ProviderOutput]:
    output_field = fields_of(model).output_field

    def parse(result: dict[str, Any], *, request_id: str | None = None) -> ProviderOutput:
        return parse_output(result, output_field, request_id=request_id)

    return parse


def _image_model(model_id: str, kind: str) -> ModelEntry:
    model = load_catalog().get(model_id, kind=kind)
    if model.backend != "fal":
        raise ModelUnavailableError(model.id, [f"the '{model.backend}' backend cannot make images"])
    return model


async def run_generate_image(run_id: str, model_id: str, params: ImageParams) -> ProviderOutput:
    """``generate_image``: the pipeline's start image from its prompt, as a URL on fal's CDN (a local model's
    picture is drawn here instead, see ``reelflow.jobs.local_steps``)."""
    if load_catalog().get(model_id, kind="t2i").backend == "local":
        return await run_local_image(run_id, model_id, params)
    model = _image_model(model_id, "t2i")

    async def arguments() -> dict[str, Any]:
        return build_arguments(model, params, None)

    cost = model.price.estimate(megapixels=params.width * params.height / 1_000_000)
    return await run_fal_job(FalRequest(run_id=run_id, step="generate_image", model=model, cost_usd=cost,
                                        arguments=arguments, parse=_parser(model)))


async def run_edit_image(run_id: str, model_id: str, image: MediaRef, params: ImageParams) -> ProviderOutput:
    """``edit_image``: ``image`` edited by the instruction ``params.prompt`` (FLUX Kontext, Nano Banana edit)."""
    model = _image_model(model_id, "i2i")

    async def arguments() -> dict[str, Any]:
        return build_arguments(model, params, await image_url(image))

    cost = model.price.estimate(megapixels=params.width * params.height / 1_000_000)
    return await run_fal_job(FalRequest(run_id=run_id, step="edit_image", model=model, cost_usd=cost,
                                        arguments=arguments, parse=_parser(model)))


def _video_cost(model: ModelEntry, params: VideoParams) -> Decimal | None:
    return model.price.estimate(seconds=params.duration_s, resolution=params.resolution, audio=params.audio)


async def run_i2v_fal(run_id: str, model_id: str, image: MediaRef, params: VideoParams,
                      end_image: MediaRef | None = None) -> ProviderOutput:
    """``i2v_fal``: one image-to-video job on fal (first-last-frame with ``end_image``); the video is on fal's CDN."""
    model = load_catalog().get(model_id, kind="i2v")

    async def arguments() -> dict[str, Any]:
        end = await image_url(end_image) if end_image is not None else None
        return build_arguments(model, params, await image_url(image), end)

    return await run_fal_job(FalRequest(run_id=run_id, step="i2v_fal", model=model, cost_usd=_video_cost(model, params),
                                        arguments=arguments, parse=_parser(model)))


async def run_t2v_fal(run_id: str, model_id: str, params: VideoParams) -> ProviderOutput:
    """``t2v_fal``: one text-to-video job on fal, from the prompt alone; the video is on fal's CDN."""
    model = load_catalog().get(model_id, kind=VIDEO_KINDS)
    if model.kind != "t2v":
        raise SpecError("model", f"{model.id} is an image-to-video model; it needs a start image")

    async def arguments() -> dict[str, Any]:
        return build_arguments(model, params, None)

    return await run_fal_job(FalRequest(run_id=run_id, step="t2v_fal", model=model, cost_usd=_video_cost(model, params),
                                        arguments=arguments, parse=_parser(model)))
