"""One ComfyUI job inside ``i2v_comfyui``: submitted once under a stored prompt id, or resumed by that id.

- The prompt id is written to the store before POST /prompt, and the websocket is open before it too.
- A stored id (task retry, ``reelflow resume``) is waited on again, never submitted again. If ComfyUI lost it
  (restart), the job is submitted anew only when the block allows it (``allow_resubmit_lost_jobs``).
- An out-of-memory ``execution_error`` frees VRAM (``POST /free``) and runs once more; other errors fail.
- Cancellation (``asyncio.CancelledError``) removes the prompt from the queue and interrupts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.domain import MediaRef, VideoParams
from reelflow.errors import ProviderError
from reelflow.gpu.cost import execution_seconds
from reelflow.jobs.comfyui_progress import ComfyProgress
from reelflow.jobs.gpu_inputs import read_media, scratch_dir, write_stream
from reelflow.jobs.step_protocol import Step
from reelflow.providers.comfyui import (
    ComfyClient,
    ExecutionError,
    JobCancelledError,
    JobLostError,
    JobResult,
    SubmitOutcomeUnknown,
    WorkflowTemplate,
    find_video,
    new_prompt_id,
    output_prefix,
    render,
)

log = logging.getLogger(__name__)
CANCEL_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ComfyJobInput:
    run_id: str
    template: WorkflowTemplate
    params: VideoParams
    image: MediaRef
    gpu: GpuEndpoint
    poll_interval_s: float


class ComfyJob:
    """``await ComfyJob(client, step, job).run()`` -> the finished prompt's video, downloaded to scratch."""

    def __init__(self, client: ComfyClient, step: Step, job: ComfyJobInput) -> None:
        self.client, self.step, self.job = client, step, job
        self.client_id = f"reelflow-{job.run_id}"
        self.deadline_s = job.gpu.job_deadline_minutes * 60.0
        self.prompt_id: str | None = None
        self.gpu_seconds = 0.0
        self.attempts = 0
        self.progress = ComfyProgress(step, job.template.graph)

    async def run(self) -> tuple[JobResult, Path]:
        try:
            result = await self._run()
            return result, await self._download(result)
        except asyncio.CancelledError:
            await self._interrupt()
            raise

    async def _run(self) -> JobResult:
        if self.step.provider_job_id:
            resumed = await self._resume(self.step.provider_job_id)
            if resumed is not None:
                return resumed
        await self.client.preflight(self.job.template.graph)
        image_name = await self.client.upload_image(await read_media(self.job.image))
        oom_retried = lost_resubmitted = False
        while True:
            try:
                return await self._attempt(image_name)
            except ExecutionError as exc:
                if not exc.is_oom or oom_retried:
                    raise
                oom_retried = True
                self.step.log(f"out of GPU memory in node {exc.node_id} ({exc.node_type}); freeing VRAM "
                              "(POST /free) and running once more")
                await self.client.free()
            except JobLostError as exc:
                self._on_lost(exc, already_resubmitted=lost_resubmitted)
                lost_resubmitted = True

    def _on_lost(self, exc: JobLostError, *, already_resubmitted: bool = False) -> None:
        """A lost job is resubmitted (once) only when the block allows it; otherwise fail and say why."""
        if not self.job.gpu.allow_resubmit_lost_jobs or already_resubmitted:
            why = ("it was lost again" if already_resubmitted else
                   "a new attempt would be a second paid GPU job; allow it with "
                   "`reelflow gpu set --allow-resubmit-lost-jobs`, or run again with --force")
            raise ProviderError(f"{exc}. Not resubmitting: {why}") from None
        self.step.log(f"{exc}; submitting it again as a new prompt (allow_resubmit_lost_jobs is on)")

    async def _resume(self, prompt_id: str) -> JobResult | None:
        """Wait on a stored prompt; None when it is gone or ended without a video and a new attempt may start."""
        self.prompt_id = prompt_id
        self.step.log(f"resuming ComfyUI prompt {prompt_id}: waiting on it by id, not submitting again")
        started = time.monotonic()
        try:
            async with self._waiter(prompt_id) as waiter:
                return await self._finish(prompt_id, await waiter.run(self.deadline_s, interrupt_on_deadline=True),
                                          started)
        except JobLostError as exc:
            self._on_lost(exc)
        except (JobCancelledError, ExecutionError) as exc:
            self.step.log(f"the earlier attempt ended without a video ({exc}); starting a new one")
        return None

    def _waiter(self, prompt_id: str) -> Any:
        return self.client.waiter(prompt_id, self.client_id, on_progress=self.progress,
                                  poll_interval_s=self.job.poll_interval_s, filename_prefix=output_prefix(prompt_id))

    async def _attempt(self, image_name: str) -> JobResult:
        prompt_id = new_prompt_id(self.job.run_id)
        graph = render(self.job.template, image_name=image_name, params=self.job.params,
                       filename_prefix=output_prefix(prompt_id))
        self.step.record_job(prompt_id, self.client.base_url)
        self.prompt_id = prompt_id
        self.attempts += 1
        async with self._waiter(prompt_id) as waiter:
            started = time.monotonic()
            try:
                await self.client.submit(graph, prompt_id, self.client_id)
            except SubmitOutcomeUnknown as exc:
                self.step.log(f"{exc}; looking the prompt up by id instead of submitting again")
            else:
                self.step.log(f"submitted ComfyUI prompt {prompt_id} to {self.client.base_url}")
            try:
                entry = await waiter.run(self.deadline_s, interrupt_on_deadline=True)
            except ExecutionError:
                self.gpu_seconds += time.monotonic() - started
                raise
        return await self._finish(prompt_id, entry, started)

    async def _finish(self, prompt_id: str, entry: dict[str, Any], started: float) -> JobResult:
        self.gpu_seconds += execution_seconds(entry) or (time.monotonic() - started)
        output = find_video(entry, self.job.template.output_node)
        if entry.get("recovered"):
            self.step.log(f"ComfyUI forgot prompt {prompt_id}, but its output {output.filename} was on disk")
        return JobResult(prompt_id, output, self.client.download(output), entry)

    async def _download(self, result: JobResult) -> Path:
        name = f"{result.prompt_id}{result.output.extension or '.mp4'}"
        path = await write_stream(self.client.stream_view(result.output), scratch_dir(self.job.run_id) / name)
        await self.step.progress(1.0, f"downloaded {result.output.filename} ({path.stat().st_size} bytes)",
                                 force=True)
        return path

    async def _interrupt(self) -> None:
        """The run was cancelled: take the prompt off the queue and interrupt it, so the GPU stops."""
        if self.prompt_id is None:
            return
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_S):
                await asyncio.shield(self.client.cancel(self.prompt_id))
        except BaseException as exc:  # the run is being cancelled whatever happens here
            log.warning("could not interrupt ComfyUI prompt %s: %r", self.prompt_id, exc)
            return
        self.step.log(f"cancelled: ComfyUI prompt {self.prompt_id} removed from the queue and interrupted")
