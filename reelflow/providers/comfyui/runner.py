"""One job end to end (health, preflight, upload, submit, wait, find the video), and resuming one by id."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from reelflow.core.domain import MediaRef, ProviderOutput, VideoParams
from reelflow.providers.comfyui.client import ComfyClient
from reelflow.providers.comfyui.outputs import OutputFile, find_video
from reelflow.providers.comfyui.waiter import OnProgress, Waiter
from reelflow.providers.comfyui.workflow import WorkflowTemplate, render


def new_prompt_id(job_key: str) -> str:
    """A fresh id for one submit attempt; store it before submitting."""
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', job_key)[:80]}-{uuid.uuid4().hex[:12]}"


def output_prefix(prompt_id: str) -> str:
    """The ``filename_prefix`` of an attempt: unique, so its first file is ``<prompt_id>_00001_.mp4``."""
    return f"reelflow/{prompt_id}"


@dataclass(frozen=True)
class JobResult:
    prompt_id: str
    output: OutputFile
    media: MediaRef
    history: dict[str, Any]

    @property
    def recovered(self) -> bool:
        return bool(self.history.get("recovered"))

    def provider_output(self, params: VideoParams) -> ProviderOutput:
        duration = params.frames / params.fps if params.frames and params.fps else params.duration_s
        return ProviderOutput(media=self.media, width=params.width, height=params.height, fps=params.fps,
                              frames=params.frames, duration_s=duration, provider_job_id=self.prompt_id)


async def resume_job(client: ComfyClient, prompt_id: str, client_id: str, *, output_node: str | None = None,
                     on_progress: OnProgress | None = None, deadline_s: float = 1800.0,
                     poll_interval_s: float = 15.0, waiter: Waiter | None = None) -> JobResult:
    """Wait for a submitted prompt (after submit, or after an orchestrator restart) and find its video."""
    waiter = waiter or client.waiter(prompt_id, client_id, on_progress=on_progress, poll_interval_s=poll_interval_s,
                                     filename_prefix=output_prefix(prompt_id))
    entry = await waiter.run(deadline_s, interrupt_on_deadline=True)
    output = find_video(entry, output_node)
    return JobResult(prompt_id, output, client.download(output), entry)


async def run_job(client: ComfyClient, template: WorkflowTemplate, *, image: bytes, params: VideoParams,
                  prompt_id: str, client_id: str, on_progress: OnProgress | None = None,
                  deadline_s: float = 1800.0, poll_interval_s: float = 15.0) -> JobResult:
    """Run one job. Store ``prompt_id`` before calling; after a crash call ``resume_job`` with it instead.

    The websocket is connected before the prompt is submitted, so no early event is missed.
    """
    await client.health()
    await client.preflight(template.graph)
    image_name = await client.upload_image(image)
    graph = render(template, image_name=image_name, params=params, filename_prefix=output_prefix(prompt_id))
    async with client.waiter(prompt_id, client_id, on_progress=on_progress, poll_interval_s=poll_interval_s,
                             filename_prefix=output_prefix(prompt_id)) as waiter:
        await client.submit(graph, prompt_id, client_id)
        return await resume_job(client, prompt_id, client_id, output_node=template.output_node,
                                deadline_s=deadline_s, waiter=waiter)
