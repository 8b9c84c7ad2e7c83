"""The ComfyUI client, workflows and job (``reelflow.jobs.comfyui``) against the ComfyUI emulator (real HTTP +
websocket on 127.0.0.1). The job runs through ``run_job`` with an in-memory step in place of the store's."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from prefect.exceptions import TerminationSignal

from reelflow.core.catalog.workflows import wan22_template
from reelflow.core.domain import MediaRef, VideoParams
from reelflow.errors import ProviderCancelledError, ProviderError, SpecError, TransientProviderError
from reelflow.jobs.comfyui import ComfyJob, ComfyJobInput, ComfyResult
from reelflow.jobs.job import run_job
from reelflow.providers.comfyui import (
    ComfyBusyError,
    ComfyClient,
    ComfyDeadlineError,
    ComfyExecutionError,
    ComfyJobCancelledError,
    ComfyMissingModelsError,
    ComfyMissingNodesError,
    ComfyNoVideoOutputError,
    ComfyPromptRejectedError,
    ComfySubmitUncertainError,
    ComfyUnreachableError,
    ProgressEvent,
    Waiter,
    WorkflowError,
    WorkflowTemplate,
    find_output,
    find_outputs,
    load_custom_workflow,
    new_prompt_id,
    output_prefix,
    render,
)
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.common.media import mp4_bytes, png_bytes
from tests.support.cli import ROOT as MAIN_ROOT
from tests.support.polling import wait_until

POLL = 0.2
WAN = wan22_template()
PARAMS = VideoParams(prompt="a red fox runs through snow", negative_prompt="blurry", duration_s=3.0,
                     frames=49, fps=16, width=480, height=320, seed=1234)


@dataclass
class MemoryStep:
    """``reelflow.jobs.step.Step`` in memory: the stored job id, the progress and the log lines."""

    run_id: str = "run-1"
    name: str = "i2v_comfyui"
    provider_job_id: str | None = None
    recorded: list[str] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def record_job(self, job_id: str, endpoint: str | None = None) -> None:
        self.recorded.append(job_id)
        self.provider_job_id = job_id

    async def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self.fractions.append(fraction)

    def log(self, message: str, kind: str = "log") -> None:
        self.logs.append(message)


@pytest.fixture()
def emu() -> Iterator[ComfyEmulator]:
    with ComfyEmulator(job_seconds=0.4, history_delay_s=0.1) as emulator:
        yield emulator


@pytest.fixture()
async def client(emu: ComfyEmulator) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(emu.url) as comfy:
        yield comfy


@pytest.fixture()
def image(tmp_path: Path) -> MediaRef:
    path = tmp_path / "input.png"
    path.write_bytes(png_bytes())
    return MediaRef(path=str(path), content_type="image/png")


def wan_job(client: ComfyClient, step: MemoryStep, image: MediaRef, *, template: WorkflowTemplate = WAN,
            on_event: Callable[[ProgressEvent], Awaitable[None] | None] | None = None, poll_interval_s: float = POLL,
            deadline_s: float = 30, allow_resubmit: bool = False) -> ComfyJob:
    job = ComfyJob(client, step, ComfyJobInput(run_id=step.run_id, template=template, params=PARAMS, media=image,
                                               deadline_s=deadline_s, allow_resubmit=allow_resubmit,
                                               poll_interval_s=poll_interval_s))
    if on_event is not None:
        to_step = job.progress

        async def both(event: ProgressEvent) -> None:
            outcome = on_event(event)
            if outcome is not None:
                await outcome
            await to_step(event)

        job.progress = both  # type: ignore[assignment]
    return job


async def run_wan(client: ComfyClient, image: MediaRef, step: MemoryStep | None = None, **kwargs: Any) -> ComfyResult:
    step = step or MemoryStep()
    return await run_job(step, wan_job(client, step, image, **kwargs))


async def wait_for(client: ComfyClient, prompt_id: str, deadline_s: float = 10) -> dict[str, Any]:
    async with Waiter(client, prompt_id, "worker-1", poll_interval_s=POLL,
                      filename_prefix=output_prefix(prompt_id)) as waiter:
        return await waiter.run(deadline_s, interrupt_on_deadline=True)


async def submit_wan(client: ComfyClient, prompt_id: str, template: Any = WAN) -> None:
    name = await client.upload_image(png_bytes())
    graph = render(template, upload_name=name, params=PARAMS, filename_prefix=output_prefix(prompt_id))
    await client.submit(graph, prompt_id, "worker-1")


def frame_count(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_wan_graph_renders_injected_values() -> None:
    graph = render(WAN, upload_name="reelflow_ab.png", params=PARAMS, filename_prefix="reelflow/job-1")
    assert graph["97"]["inputs"]["image"] == "reelflow_ab.png"
    assert graph["93"]["inputs"]["text"] == PARAMS.prompt
    assert graph["89"]["inputs"]["text"] == "blurry"
    assert graph["86"]["inputs"]["noise_seed"] == 1234
    assert (graph["98"]["inputs"]["width"], graph["98"]["inputs"]["height"]) == (480, 320)
    assert graph["98"]["inputs"]["length"] == 49 and graph["94"]["inputs"]["fps"] == 16
    assert graph["108"]["inputs"]["filename_prefix"] == "reelflow/job-1"
    assert WAN.graph["93"]["inputs"]["text"] == "", "render must not touch the template"
    folders = {ref.folder for ref in WAN.required_models()}
    assert folders == {"diffusion_models", "loras", "text_encoders", "vae"}
    with pytest.raises(SpecError, match="frames"):
        render(WAN, upload_name="x.png", params=PARAMS.model_copy(update={"frames": 48}), filename_prefix="a")
    with pytest.raises(SpecError, match="width"):
        render(WAN, upload_name="x.png", params=PARAMS.model_copy(update={"width": 500}), filename_prefix="a")


async def test_happy_path_with_tunnel_auth_progress_and_real_mp4(image: MediaRef) -> None:
    auth = {"required_headers": {"Authorization": "Bearer tunnel"},
            "required_cookies": {"CF_Authorization": "c"}}
    with ComfyEmulator(job_seconds=0.4, history_delay_s=0.1, combo_form="v3", **auth) as emu:
        async with ComfyClient(emu.url) as anonymous:
            with pytest.raises(ComfyUnreachableError, match=emu.url):
                await anonymous.health()
        events: list[ProgressEvent] = []
        step = MemoryStep()
        async with ComfyClient(emu.url, headers={"Authorization": "Bearer tunnel"},
                               cookies={"CF_Authorization": "c"}) as client:
            result = await run_wan(client, image, step, on_event=events.append)
        stats = emu.stats()
    assert result.output.filename == f"{result.prompt_id}_00001_.mp4"
    assert result.output.subfolder == "reelflow" and result.output.content_type == "video/mp4"
    assert result.history["outputs"]["108"] == {"images": [{"filename": result.output.filename,
                                                            "subfolder": "reelflow", "type": "output"}],
                                                "animated": [True]}, "SaveVideo reports as ComfyUI 0.3.64 does"
    assert result.path.name == f"{result.prompt_id}.mp4" and frame_count(result.path.read_bytes()) == 17
    steps = [(event.node, event.value, event.max) for event in events if event.kind == "progress"]
    assert ("86", 4, 4) in steps and ("85", 4, 4) in steps
    assert stats["submits"] == [result.prompt_id] and stats["uploads"] == 1 and stats["ws_connects"] == 1
    assert step.recorded == [result.prompt_id] and step.fractions[-1] == 1.0
    assert 0.05 < max(step.fractions[:-1]) < 1.0, "sampler steps drove the progress before the download"


async def test_missing_models_listed_in_one_error_without_submitting(emu: ComfyEmulator, client: ComfyClient,
                                                                      image: MediaRef) -> None:
    installed = emu.knobs.installed_models
    unets = installed["diffusion_models"][:1]
    emu.configure(installed_models={**installed, "vae": [], "diffusion_models": unets})
    step = MemoryStep()
    with pytest.raises(ComfyMissingModelsError) as caught:
        await run_wan(client, image, step)
    assert step.recorded == [], "no prompt id is stored for a job that preflight refused"
    missing = {(ref.folder, ref.filename) for ref in caught.value.models}
    assert missing == {("vae", "wan_2.1_vae.safetensors"),
                       ("diffusion_models", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors")}
    assert "vae/wan_2.1_vae.safetensors" in str(caught.value) and emu.url in str(caught.value)
    assert emu.stats()["submits"] == [] and "POST /prompt" not in emu.stats()["calls"]
    with pytest.raises(ComfyMissingModelsError) as rejected:
        await submit_wan(client, new_prompt_id("skip-preflight"))
    assert {(ref.folder, ref.filename) for ref in rejected.value.models} == missing
    assert emu.stats()["submits"] == []


async def test_missing_custom_node_class(emu: ComfyEmulator, client: ComfyClient) -> None:
    installed = emu.knobs.installed_models
    emu.configure(missing_node_classes=["WanImageToVideo", "UNETLoader"],
                  installed_models={**installed, "diffusion_models": installed["diffusion_models"][1:]})
    with pytest.raises(ComfyMissingNodesError, match="UNETLoader, WanImageToVideo") as caught:
        await client.preflight(WAN.graph)
    assert [(ref.folder, ref.node_id) for ref in caught.value.models] == [("diffusion_models", "95")]
    assert emu.stats()["calls"]["GET /models/diffusion_models"] == 1


async def test_submit_http_failures_are_transient(emu: ComfyEmulator, client: ComfyClient) -> None:
    emu.configure(prompt_status=500)
    with pytest.raises(ComfyBusyError) as busy:
        await submit_wan(client, "p-500")
    assert isinstance(busy.value, TransientProviderError) and busy.value.status == 500
    emu.configure(prompt_status=524)
    with pytest.raises(ComfySubmitUncertainError, match="call wait"):
        await submit_wan(client, "p-524")
    assert emu.stats()["submits"] == []


async def test_identical_graph_is_served_from_cache(emu: ComfyEmulator, client: ComfyClient) -> None:
    name = await client.upload_image(png_bytes())
    graph = render(WAN, upload_name=name, params=PARAMS, filename_prefix="reelflow/same")
    entries = []
    for prompt_id in ("same-1", "same-2"):
        await client.submit(graph, prompt_id, "worker-1")
        entries.append(await wait_for(client, prompt_id))
    assert find_outputs(entries[0]) == find_outputs(entries[1])
    assert len(emu.output_files()) == 1


async def test_partial_acceptance_is_a_failure_and_is_cancelled(emu: ComfyEmulator,
                                                                client: ComfyClient) -> None:
    name = await client.upload_image(png_bytes())
    graph = render(WAN, upload_name=name, params=PARAMS, filename_prefix="a/b")
    graph["200"] = {"class_type": "LoadImage", "inputs": {"image": "never-uploaded.png"}}
    graph["201"] = {"class_type": "SaveImage", "inputs": {"images": ["200", 0], "filename_prefix": "extra"}}
    emu.configure(job_seconds=5)
    with pytest.raises(ComfyPromptRejectedError, match="partially_accepted") as caught:
        await client.submit(graph, "partial-1", "worker-1")
    assert caught.value.node_errors["200"]["dependent_outputs"] == ["201"]
    stats = emu.stats()
    assert stats["submits"] == ["partial-1"] and stats["queue_deletes"] == 1 and stats["interrupts"] == 1


async def test_execution_error_names_node_and_exception(emu: ComfyEmulator, client: ComfyClient,
                                                        image: MediaRef) -> None:
    emu.configure(error_node="85")
    step = MemoryStep()
    with pytest.raises(ComfyExecutionError) as caught:
        await run_wan(client, image, step)
    assert emu.stats()["frees"] == 1 and len(emu.stats()["submits"]) == 2, "out of memory: /free, then once more"
    assert len(step.recorded) == 2 and step.recorded == emu.stats()["submits"]
    error = caught.value
    assert (error.node_id, error.node_type, error.exception_type) == ("85", "KSamplerAdvanced",
                                                                      "torch.OutOfMemoryError")
    assert error.is_oom and "Allocation on device" in str(error)
    assert "node 85 (KSamplerAdvanced)" in str(error)


async def test_websocket_dropped_mid_job_completes_with_one_submit(emu: ComfyEmulator, client: ComfyClient,
                                                                   image: MediaRef) -> None:
    emu.configure(job_seconds=1.5, drop_websocket_after_s=0.2)
    result = await run_wan(client, image)
    stats = emu.stats()
    assert stats["submits"] == [result.prompt_id] and stats["ws_connects"] >= 2
    assert frame_count(result.path.read_bytes()) == 17


async def test_silent_websocket_completes_by_polling(emu: ComfyEmulator, client: ComfyClient,
                                                     image: MediaRef) -> None:
    emu.configure(silent_websocket=True)
    result = await run_wan(client, image)
    assert result.output.extension == ".mp4"
    assert emu.stats()["calls"][f"GET /history/{result.prompt_id}"] >= 2


async def test_restart_mid_job_is_job_lost(emu: ComfyEmulator, client: ComfyClient, image: MediaRef) -> None:
    restarted = asyncio.Event()

    async def restart_once(event: ProgressEvent) -> None:
        if event.kind == "progress" and not restarted.is_set():
            restarted.set()
            await asyncio.to_thread(emu.restart)

    emu.configure(job_seconds=2.0)
    with pytest.raises(ProviderError, match=r"lost prompt .*Not resubmitting: a new attempt would be a second paid"):
        await run_wan(client, image, on_event=restart_once)
    assert emu.stats()["restarts"] == 1 and len(emu.stats()["submits"]) == 1


async def test_resume_after_restart_recovers_written_output(emu: ComfyEmulator, client: ComfyClient,
                                                            image: MediaRef) -> None:
    result = await run_wan(client, image)
    emu.restart()
    step = MemoryStep(run_id="run-2", provider_job_id=result.prompt_id)
    resumed = await run_wan(client, image, step, deadline_s=10)
    assert resumed.recovered and resumed.output.filename == result.output.filename
    assert frame_count(resumed.path.read_bytes()) == 17
    assert len(emu.stats()["submits"]) == 1 and step.recorded == []
    assert any("but its output" in line and "was on disk" in line for line in step.logs)


async def test_resume_after_orchestrator_crash_waits_without_resubmitting(emu: ComfyEmulator, client: ComfyClient,
                                                                           image: MediaRef) -> None:
    emu.configure(job_seconds=1.0)
    prompt_id = new_prompt_id("crash")
    await submit_wan(client, prompt_id)  # the orchestrator that submitted it died right after
    step = MemoryStep(run_id="run-2", provider_job_id=prompt_id)
    resumed = await run_wan(client, image, step)
    assert not resumed.recovered and resumed.output.node_id == "108" and resumed.prompt_id == prompt_id
    assert emu.stats()["submits"] == [prompt_id] and step.recorded == []
    assert step.logs[0] == f"resuming ComfyUI prompt {prompt_id}: waiting on it by id, not submitting again"


async def test_cancel_interrupts_the_running_prompt(emu: ComfyEmulator, client: ComfyClient,
                                                     image: MediaRef) -> None:
    emu.configure(job_seconds=3.0)
    step = MemoryStep()
    seen_running: list[bool] = []
    running = asyncio.Event()

    async def note_running(event: ProgressEvent) -> None:
        if event.kind == "progress" and not seen_running:
            seen_running.append(step.provider_job_id in (await client.queue_state()).running)
            running.set()

    job = asyncio.create_task(run_wan(client, image, step, on_event=note_running))
    await running.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    prompt_id = step.provider_job_id
    assert prompt_id is not None and seen_running == [True]
    assert emu.stats()["interrupts"] == 1 and emu.stats()["queue_deletes"] == 1
    assert f"interrupt sent: ComfyUI prompt {prompt_id} removed from the queue and interrupted" in step.logs
    assert step.logs[-1] == f"cancelled: ComfyUI confirmed prompt {prompt_id} stopped (execution_interrupted)"
    with pytest.raises(ComfyJobCancelledError, match="interrupted"):
        await wait_for(client, prompt_id)
    assert not (await client.queue_state()).busy
    await client.free()
    assert emu.stats()["frees"] == 1


def test_the_interrupt_reaches_comfyui_when_the_event_loop_is_torn_down_during_the_cancel(
        emu: ComfyEmulator, image: MediaRef) -> None:
    """A Prefect runner cancels in two blows: its intent (the job task is cancelled) and then SIGTERM, which Prefect
    raises as TerminationSignal wherever the main thread is; in the event loop's own code it ends ``asyncio.run``,
    which cancels every task once more. The stop already on its way to ComfyUI must still get there."""
    emu.configure(job_seconds=30.0, control_answer_delay_s=0.5)
    step = MemoryStep()

    async def job_with_its_own_client() -> None:
        async with ComfyClient(emu.url) as comfy:
            await run_wan(comfy, image, step)

    def as_prefect_does(signum: int, frame: object) -> None:
        raise TerminationSignal(signal=signum)

    async def runner_cancels() -> None:
        job = asyncio.create_task(job_with_its_own_client())
        await asyncio.to_thread(wait_until, lambda: step.provider_job_id and emu.state.running, 10, "the job to run")
        job.cancel()
        await asyncio.to_thread(wait_until, lambda: emu.stats()["queue_deletes"], 10, "the queue delete")
        os.kill(os.getpid(), signal.SIGTERM)
        await job

    previous = signal.signal(signal.SIGTERM, as_prefect_does)
    try:
        with pytest.raises(TerminationSignal):
            asyncio.run(runner_cancels())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert emu.stats()["interrupts"] >= 1
    assert emu.state.running is None
    assert emu.state.history[step.provider_job_id]["status"]["messages"][-1][0] == "execution_interrupted"


async def test_malformed_prompt_body_is_comfyuis_text_500(emu: ComfyEmulator) -> None:
    async with httpx.AsyncClient(base_url=emu.url) as http:
        for body in (b"{not json", b"[]"):
            answer = await http.post("/prompt", content=body, headers={"Content-Type": "application/json"})
            assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/plain")
            assert "Server got itself in trouble" in answer.text
    assert emu.stats()["submits"] == []


async def test_interrupt_from_outside_is_a_cancellation_not_a_failure(emu: ComfyEmulator, client: ComfyClient,
                                                                      image: MediaRef) -> None:
    """Someone presses Cancel in ComfyUI's own page (``POST /interrupt`` without a body) while the job runs."""
    emu.configure(job_seconds=3.0)
    step = MemoryStep()

    async def interrupt_once(event: ProgressEvent) -> None:
        if event.kind == "progress" and emu.stats()["interrupts"] == 0:
            async with httpx.AsyncClient() as other:
                await other.post(f"{emu.url}/interrupt")

    with pytest.raises(ProviderCancelledError, match="interrupted at node") as caught:
        await run_wan(client, image, step, on_event=interrupt_once)
    assert isinstance(caught.value, ComfyJobCancelledError)
    prompt_id = step.provider_job_id
    assert prompt_id is not None and emu.stats()["submits"] == [prompt_id]
    with pytest.raises(ProviderCancelledError, match="interrupted"):
        await wait_for(client, prompt_id)  # another client id gets no events: this is read from /history
    status = (await client.history(prompt_id) or {})["status"]
    assert status["status_str"] == "error" and not status["completed"]
    assert status["messages"][-1][0] == "execution_interrupted"


async def test_deadline_interrupts_and_raises(emu: ComfyEmulator, client: ComfyClient, image: MediaRef) -> None:
    emu.configure(job_seconds=10.0)
    with pytest.raises(ComfyDeadlineError):
        await run_wan(client, image, deadline_s=0.5)
    assert emu.stats()["interrupts"] == 1 and len(emu.stats()["submits"]) == 1


@pytest.mark.parametrize("output_key", ["gifs", "images", "videos"])
async def test_video_found_under_any_output_key(emu: ComfyEmulator, client: ComfyClient, image: MediaRef,
                                                output_key: str) -> None:
    emu.configure(output_key=output_key)
    result = await run_wan(client, image)
    assert result.output.filename.endswith(".mp4")
    assert output_key in result.history["outputs"]["108"]


def test_find_outputs_is_loud_without_video() -> None:
    still = {"filename": "still_00001_.png", "subfolder": "", "type": "output"}
    entry: dict[str, Any] = {"outputs": {"9": {"images": [still]}}}
    with pytest.raises(ProviderError, match="without a video"):
        find_outputs(entry)
    entry["outputs"]["7"] = {"images": [{"filename": "a_00001_.webp", "subfolder": "v", "type": "output"}],
                             "animated": [True]}
    assert find_outputs(entry)[0].filename == "a_00001_.webp"


async def test_finish_race_history_written_after_done(emu: ComfyEmulator, client: ComfyClient,
                                                      image: MediaRef) -> None:
    emu.configure(late_history_s=0.6, history_delay_s=0.2)
    result = await run_wan(client, image, poll_interval_s=30, deadline_s=20)
    assert result.output.node_id == "108" and not result.recovered


async def test_upload_is_content_addressed_and_server_renames_conflicts(emu: ComfyEmulator,
                                                                         client: ComfyClient) -> None:
    first = await client.upload_image(png_bytes())
    assert first.startswith("reelflow_") and first.endswith(".png")
    assert await client.upload_image(png_bytes()) == first
    renamed = await client.upload_image(png_bytes((1, 2, 3)), filename=first)
    assert renamed == first.replace(".png", " (1).png")
    with pytest.raises(SpecError, match="image"):
        await client.upload_image(b"not an image")


async def test_a_video_is_uploaded_under_its_container_extension_and_a_non_video_refused(
        emu: ComfyEmulator, client: ComfyClient) -> None:
    name = await client.upload_video(mp4_bytes(32, 32, 4, 8))
    assert name.startswith("reelflow_") and name.endswith(".mp4")
    assert emu.stats()["uploaded"][-1] == name
    with pytest.raises(SpecError, match="video"):
        await client.upload_video(png_bytes())


def test_an_image_output_is_found_in_images_and_an_animated_one_is_not() -> None:
    entry = {"outputs": {"9": {"images": [{"filename": "up_00001_.png", "subfolder": "upscaled", "type": "output"}]},
                         "7": {"images": [{"filename": "clip_00001_.mp4", "subfolder": "", "type": "output"}],
                               "animated": [True]}}}
    found = find_output(entry, "9", "image")
    assert (found.filename, found.subfolder, found.node_id, found.content_type) == (
        "up_00001_.png", "upscaled", "9", "image/png")
    assert find_output(entry, "9", "video").filename == "clip_00001_.mp4"
    with pytest.raises(ComfyNoVideoOutputError, match="without an image output"):
        find_output({"outputs": {"7": entry["outputs"]["7"]}}, "7", "image")


def write_custom_workflow(path: Path) -> Path:
    graph = {
        "_comment": "exported with Export (API)",
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15_tiny.safetensors"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": 4, "cfg": 1.0,
                                                    "positive": ["3", 0], "latent_image": ["2", 0]}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "VHS_VideoCombine", "inputs": {
            "images": ["5", 0], "frame_rate": 8, "filename_prefix": "AnimateDiff", "format": "video/h264-mp4",
            "save_output": True}},
    }
    path.write_text(json.dumps(graph), encoding="utf-8")
    return path


async def test_custom_workflow_file_runs(emu: ComfyEmulator, client: ComfyClient, tmp_path: Path,
                                         image: MediaRef) -> None:
    path = write_custom_workflow(tmp_path / "animate.json")
    template = load_custom_workflow(path, image="2.image", prompt="3.text", seed="4.seed", output_node="6",
                                    filename_prefix="6.filename_prefix", fps="6.frame_rate")
    assert "_comment" not in template.graph
    result = await run_wan(client, image, template=template, deadline_s=20)
    assert "gifs" in result.history["outputs"]["6"] and result.output.node_id == "6"
    submitted = result.history["prompt"][2]
    assert submitted["4"]["inputs"]["seed"] == 1234 and submitted["6"]["inputs"]["frame_rate"] == 16
    assert frame_count(result.path.read_bytes()) == 17


def test_custom_workflow_errors_are_clear(tmp_path: Path) -> None:
    path = write_custom_workflow(tmp_path / "animate.json")
    with pytest.raises(WorkflowError, match="output node '99'"):
        load_custom_workflow(path, image="2.image", prompt="3.text", seed="4.seed", output_node="99")
    with pytest.raises(WorkflowError, match="node 3 \\(CLIPTextEncode\\) has inputs"):
        load_custom_workflow(path, image="2.image", prompt="3.prompt", seed="4.seed", output_node="6")
    with pytest.raises(WorkflowError, match="is a link"):
        load_custom_workflow(path, image="2.image", prompt="3.clip", seed="4.seed", output_node="6")
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}), encoding="utf-8")
    with pytest.raises(WorkflowError, match="Export \\(API\\)"):
        load_custom_workflow(ui, image="2.image", prompt="3.text", seed="4.seed", output_node="6")


async def test_emulator_as_subprocess_with_admin_endpoints(image: MediaRef) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.emulators.comfyui", "--port", "0",
        "--knobs", json.dumps({"job_seconds": 0.3}), cwd=MAIN_ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("COMFYUI_EMULATOR_READY "), line
        url = json.loads(line.split(" ", 1)[1])["url"]
        async with httpx.AsyncClient(base_url=url) as admin:
            await admin.post("/_admin/config", json={"output_key": "gifs"})
            async with ComfyClient(url) as client:
                result = await run_wan(client, image)
                assert "gifs" in result.history["outputs"]["108"]
                await admin.post("/_admin/restart")
                assert await client.history(result.prompt_id) is None
            stats = (await admin.get("/_admin/stats")).json()
        assert stats["submits"] == [result.prompt_id] and stats["restarts"] == 1
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
