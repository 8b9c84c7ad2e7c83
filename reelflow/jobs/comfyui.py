"""``i2v_comfyui``'s and the ``comfyui`` pipeline step's job: a ComfyUI prompt on the user's GPU, submitted once
under a stored prompt id or resumed by it. The input (an image, or a video for a video workflow) is uploaded and
the output of the workflow's kind (a video, or an image) is downloaded.

- Preflight (node classes and model files) and the input upload come first; then the prompt id is written to the
  store, the websocket is opened, and only then is the prompt POSTed.
- A stored id (task retry, ``reelflow resume``) is waited on again, never submitted again. If ComfyUI lost it
  (restart), the job is submitted anew only when the block allows it (``allow_resubmit_lost_jobs``).
- An out-of-memory ``execution_error`` frees VRAM (``POST /free``) and runs once more; other errors fail.
- Cancelling the run removes the prompt from the queue and interrupts it (see ``reelflow.jobs.job``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.core.catalog.workflows import template_for
from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.errors import ProviderError, SpecError
from reelflow.gpu.cost import execution_seconds
from reelflow.gpu.reach import comfy_client
from reelflow.jobs.gpu import gpu_step, image_output, read_media, scratch_dir, video_output, write_stream
from reelflow.jobs.job import ProviderJob, run_job
from reelflow.jobs.step import Step
from reelflow.providers.comfyui import (
    EXTENSIONS,
    ComfyClient,
    ComfyExecutionError,
    ComfyJobCancelledError,
    ComfyJobLostError,
    ComfySubmitUncertainError,
    MediaParams,
    OutputFile,
    ProgressEvent,
    Waiter,
    WorkflowTemplate,
    find_output,
    new_prompt_id,
    output_prefix,
    render,
)
from reelflow.settings import get_settings

STEP = "i2v_comfyui"
MEDIA_STEP = "comfyui"
CANCEL_CONFIRM_S = 6.0
CANCEL_CONFIRM_POLL_S = 0.25
START, SPAN = 0.05, 0.9


@dataclass(frozen=True)
class ComfyResult:
    """The finished prompt: its history entry and its output (video or image), downloaded to the run's scratch
    folder."""

    prompt_id: str
    output: OutputFile
    history: dict[str, Any]
    path: Path

    @property
    def recovered(self) -> bool:
        return bool(self.history.get("recovered"))


@dataclass(frozen=True)
class ComfyJobInput:
    run_id: str
    template: WorkflowTemplate
    params: VideoParams | MediaParams
    media: MediaRef  # the input: an image, or a video for a workflow that takes one
    deadline_s: float
    allow_resubmit: bool
    poll_interval_s: float


def _sampler_nodes(graph: dict[str, Any]) -> set[str]:
    return {node_id for node_id, node in graph.items()
            if "Sampler" in str(node.get("class_type")) and "Select" not in str(node.get("class_type"))}


class ComfyProgress:
    """Progress events -> one 0..1 fraction and a message: sampler steps drive the fraction, every node the text."""

    def __init__(self, step: Step, graph: dict[str, Any]) -> None:
        self.step = step
        self.graph = graph
        self.expected = _sampler_nodes(graph)
        self.done: dict[str, float] = {}
        self.fraction = 0.0

    def _class(self, node: str | None) -> str:
        return str((self.graph.get(node or "") or {}).get("class_type") or "?")

    async def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "queued":
            await self.step.progress(self.fraction, f"queued on ComfyUI at position {event.queue_position}")
        elif event.kind == "started":
            await self.step.progress(max(self.fraction, 0.02), "running on the GPU")
        elif event.kind == "executing":
            await self.step.progress(self.fraction, f"node {event.node} ({self._class(event.node)})")
        elif event.kind == "progress" and event.node is not None and event.fraction is not None:
            self.expected.add(event.node)
            self.done[event.node] = event.fraction
            share = sum(self.done.values()) / len(self.expected)
            self.fraction = max(self.fraction, START + SPAN * share)
            await self.step.progress(self.fraction, f"node {event.node} ({self._class(event.node)}) step "
                                     f"{event.value}/{event.max}")


class ComfyJob(ProviderJob[ComfyResult]):
    """``await run_job(step, ComfyJob(client, step, job))`` -> the finished prompt, its output in scratch."""

    provider = "ComfyUI"

    def __init__(self, client: ComfyClient, step: Step, job: ComfyJobInput) -> None:
        self.client, self.step, self.job = client, step, job
        self.endpoint = client.base_url
        self.client_id = f"reelflow-{job.run_id}"
        self.gpu_seconds = 0.0
        self.attempts = 0
        self.progress = ComfyProgress(step, job.template.graph)
        self._upload_name: str | None = None
        self._waiter: Waiter | None = None  # opened by submit (before the POST), run by wait
        self._started = 0.0
        self._oom_retried = self._lost_resubmitted = False

    def _waiter_for(self, prompt_id: str) -> Waiter:
        return Waiter(self.client, prompt_id, self.client_id, on_progress=self.progress,
                      poll_interval_s=self.job.poll_interval_s, filename_prefix=output_prefix(prompt_id),
                      output_extension=EXTENSIONS[self.job.template.output_kind])

    async def prepare(self) -> None:
        if self._upload_name is None:
            await self.client.preflight(self.job.template.graph)
            kind = self.job.template.input_kind
            data = await read_media(self.job.media, kind)
            upload = self.client.upload_video if kind == "video" else self.client.upload_image
            self._upload_name = await upload(data)

    def mint_id(self) -> str:
        return new_prompt_id(self.job.run_id)

    async def submit(self) -> str:
        prompt_id = self.job_id
        assert prompt_id is not None and self._upload_name is not None
        graph = render(self.job.template, upload_name=self._upload_name, params=self.job.params,
                       filename_prefix=output_prefix(prompt_id))
        self.attempts += 1
        waiter = self._waiter_for(prompt_id)
        await waiter.open()
        self._started = time.monotonic()
        try:
            await self.client.submit(graph, prompt_id, self.client_id)
        except ComfySubmitUncertainError as exc:
            self.step.log(f"{exc}; looking the prompt up by id instead of submitting again")
        except BaseException:
            await waiter.close()
            raise
        else:
            self.step.log(f"submitted ComfyUI prompt {prompt_id} to {self.client.base_url}")
        self._waiter = waiter
        return prompt_id

    async def wait(self) -> ComfyResult | None:
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            return await self._wait_resumed()
        try:
            entry = await waiter.run(self.job.deadline_s, interrupt_on_deadline=True)
        except ComfyExecutionError as exc:
            self.gpu_seconds += time.monotonic() - self._started
            if not exc.is_oom or self._oom_retried:
                raise
            self._oom_retried = True
            self.step.log(f"out of GPU memory in node {exc.node_id} ({exc.node_type}); freeing VRAM "
                          "(POST /free) and running once more")
            await self.client.free()
            return None
        except ComfyJobLostError as exc:
            self._on_lost(exc, already_resubmitted=self._lost_resubmitted)
            self._lost_resubmitted = True
            return None
        return await self._finish(entry, self._started)

    async def _wait_resumed(self) -> ComfyResult | None:
        """Wait on a stored prompt; None when it is gone or ended without an output and a new attempt may start."""
        prompt_id = self.job_id
        assert prompt_id is not None
        self.step.log(f"resuming ComfyUI prompt {prompt_id}: waiting on it by id, not submitting again")
        started = time.monotonic()
        try:
            async with self._waiter_for(prompt_id) as waiter:
                entry = await waiter.run(self.job.deadline_s, interrupt_on_deadline=True)
        except ComfyJobLostError as exc:
            self._on_lost(exc)
            return None
        except (ComfyJobCancelledError, ComfyExecutionError) as exc:
            self.step.log(f"the earlier attempt ended without an output ({exc}); starting a new one")
            return None
        return await self._finish(entry, started)

    def _on_lost(self, exc: ComfyJobLostError, *, already_resubmitted: bool = False) -> None:
        """A lost job is resubmitted (once) only when the block allows it; otherwise fail and say why."""
        if not self.job.allow_resubmit or already_resubmitted:
            why = ("it was lost again" if already_resubmitted else
                   "a new attempt would be a second paid GPU job; allow it with "
                   "`reelflow gpu set --allow-resubmit-lost-jobs`, or run again with --force")
            raise ProviderError(f"{exc}. Not resubmitting: {why}") from None
        self.step.log(f"{exc}; submitting it again as a new prompt (allow_resubmit_lost_jobs is on)")

    async def _finish(self, entry: dict[str, Any], started: float) -> ComfyResult:
        prompt_id = self.job_id
        assert prompt_id is not None
        self.gpu_seconds += execution_seconds(entry) or (time.monotonic() - started)
        template = self.job.template
        output = find_output(entry, template.output_node, template.output_kind)
        if entry.get("recovered"):
            self.step.log(f"ComfyUI forgot prompt {prompt_id}, but its output {output.filename} was on disk")
        name = f"{prompt_id}{output.extension or EXTENSIONS[template.output_kind]}"
        path = await write_stream(self.client.stream_view(output), scratch_dir(self.job.run_id) / name)
        await self.step.progress(1.0, f"downloaded {output.filename} ({path.stat().st_size} bytes)", force=True)
        return ComfyResult(prompt_id, output, entry, path)

    async def cancel(self) -> str:
        """Remove and interrupt the prompt, saying so at once; ComfyUI stops only at its next node boundary, so
        the result says whether its history confirmed that within ``CANCEL_CONFIRM_S``."""
        if self._waiter is not None:
            await self._waiter.close()
        prompt_id = self.job_id
        assert prompt_id is not None
        await self.client.cancel(prompt_id)
        self.step.log(f"interrupt sent: ComfyUI prompt {prompt_id} removed from the queue and interrupted")
        deadline = time.monotonic() + CANCEL_CONFIRM_S
        while time.monotonic() < deadline:
            queue = await self.client.queue_state()
            if prompt_id not in queue.running and prompt_id not in queue.pending:
                entry = await self.client.history(prompt_id)
                stopped = _last_message(entry) if entry else "removed from the queue before it ran"
                return f"cancelled: ComfyUI confirmed prompt {prompt_id} stopped ({stopped})"
            await asyncio.sleep(CANCEL_CONFIRM_POLL_S)
        return f"interrupt sent; ComfyUI had not confirmed prompt {prompt_id} stopped within {CANCEL_CONFIRM_S:g} s"


def _last_message(entry: dict[str, Any]) -> str:
    messages = (entry.get("status") or {}).get("messages") or []
    return str(messages[-1][0]) if messages else "no status message"


async def _run(run_id: str, step_name: str, model: ModelEntry, media: MediaRef,
               params: VideoParams | MediaParams) -> tuple[ComfyResult, Decimal | None]:
    """Run (or resume) the model's graph in a GPU step named ``step_name``: the finished prompt and its cost."""
    template = template_for(model)
    async with gpu_step(run_id, step_name, model, "comfyui") as gs:
        job_input = ComfyJobInput(run_id=run_id, template=template, params=params, media=media,
                                  deadline_s=gs.deadline_s, allow_resubmit=gs.gpu.allow_resubmit_lost_jobs,
                                  poll_interval_s=get_settings().comfyui_poll_interval_s)
        async with comfy_client(gs.gpu, gs.reached.url) as client:
            job = ComfyJob(client, gs.step, job_input)
            result = await run_job(gs.step, job)
        gs.charge(job.gpu_seconds, prompt_id=result.prompt_id, workflow=template.name, submits=job.attempts,
                  output=result.output.filename, recovered=result.recovered)
    return result, gs.step.cost_usd


async def run_comfyui(run_id: str, model_id: str, image: MediaRef, params: VideoParams) -> ProviderOutput:
    """Run (or resume) the model's ComfyUI graph on the configured GPU; the video is a scratch file."""
    model = load_catalog().get(model_id, kind="i2v")
    result, cost = await _run(run_id, STEP, model, image, params)
    return await video_output(result.path, params, result.prompt_id, cost)


async def run_comfyui_media(run_id: str, model_id: str, media: MediaRef, params: MediaParams) -> ProviderOutput:
    """Run (or resume) a registered workflow that takes an image or a video and makes an image or a video (an
    upscaler, an interpolator); its output is a scratch file with its real size (and frames and fps)."""
    model = load_catalog().get(model_id)
    if model.backend != "comfyui":
        raise SpecError("model", f"'{model_id}' is not a ComfyUI workflow (`reelflow workflows list`)")
    result, cost = await _run(run_id, MEDIA_STEP, model, media, params)
    if model.output_kind == "image":
        return await image_output(result.path, result.prompt_id, cost)
    return await video_output(result.path, None, result.prompt_id, cost)
