"""The GPU job across process boundaries: a killed orchestrator resumed by id, and a Prefect cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelling

from reelflow.orchestration.concurrency import gpu_limit_name
from reelflow.runs.prepare import prepare_run
from reelflow.store import repo
from tests.emulators.comfyui import ComfyEmulator
from tests.support.cli import ROOT, run_cli_json
from tests.support.files import sha256_file
from tests.support.gpu import python, save_gpu, wan_spec
from tests.support.polling import wait_until as wait_for
from tests.support.store import step_row, store_rows

PIPELINE = ("import asyncio, sys\nfrom flows.video_pipeline import video_pipeline\nfrom reelflow.store import repo\n"
            "run = repo.get_run(sys.argv[1])\nasyncio.run(video_pipeline(spec=run.spec, run_id=run.run_id))\n")

pytestmark = pytest.mark.usefixtures("fast_polls")


def test_killed_orchestrator_is_resumed_with_exactly_one_submit(fresh_comfy: ComfyEmulator, image: Path) -> None:
    fresh_comfy.configure(job_seconds=5.0)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run_id = prepare_run(wan_spec(image), force=True).run.run_id
    orchestrator = subprocess.Popen([sys.executable, "-c", PIPELINE, run_id], cwd=ROOT, env={**os.environ},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: fresh_comfy.state.running is not None, 60, "the job to run on the GPU")
        assert step_row(run_id, "i2v_comfyui")["job"] == fresh_comfy.state.running.prompt_id, "stored first"
    finally:
        orchestrator.send_signal(signal.SIGKILL)
        orchestrator.wait(10)
    assert repo.get_run(run_id).status == "running" and fresh_comfy.state.running is not None

    code, resumed = run_cli_json("resume", run_id)
    assert code == 0 and resumed["status"] == "completed", resumed
    stats = fresh_comfy.stats()
    assert len(stats["submits"]) == 1 and stats["uploads"] == 1
    video = next(o for o in resumed["outputs"] if o["role"] == "video")
    assert sha256_file(Path(video["path"])) == sha256_file(fresh_comfy.output_files()[0])



async def _renew_lease(lease_id: str, seconds: float) -> int:
    async with get_client() as client:
        try:
            await client.renew_concurrency_lease(UUID(lease_id), lease_duration=seconds)
        except httpx.HTTPStatusError as exc:
            return exc.response.status_code
    return 204


def test_resume_frees_the_slot_recorded_on_the_killed_step(fresh_comfy: ComfyEmulator, image: Path) -> None:
    fresh_comfy.configure(job_seconds=5.0)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)  # comfyui_concurrency 1: the dead process holds it
    run_id = prepare_run(wan_spec(image), force=True).run.run_id
    orchestrator = subprocess.Popen([sys.executable, "-c", PIPELINE, run_id], cwd=ROOT, env={**os.environ},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: fresh_comfy.state.running is not None, 60, "the job to run on the GPU")
    finally:
        orchestrator.send_signal(signal.SIGKILL)
        orchestrator.wait(10)
    [(limit, lease_id)] = store_rows("SELECT slot_limit, slot_lease_id FROM steps WHERE run_id = ? AND "
                                     "name = 'i2v_comfyui'", run_id)
    assert limit == gpu_limit_name("default") and lease_id is not None, "the step row names the slot it holds"
    assert asyncio.run(_renew_lease(lease_id, 3600)) == 204, "held for another hour unless someone frees it"

    code, resumed = run_cli_json("resume", run_id)
    assert code == 0 and resumed["status"] == "completed", resumed
    assert asyncio.run(_renew_lease(lease_id, 60)) == 410, "resume released the dead process's lease"
    assert store_rows("SELECT slot_lease_id FROM steps WHERE run_id = ?", run_id) == [(None,), (None,)], \
        "a closed step holds no slot"


async def _deployment_ready(name: str) -> bool:
    async with get_client() as client:
        try:
            await client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return True


async def _state(flow_run_id: UUID) -> StateType | None:
    async with get_client() as client:
        state = (await client.read_flow_run(flow_run_id)).state
    return state.type if state else None


def test_cancelling_the_flow_run_interrupts_the_job_on_the_gpu(fresh_comfy: ComfyEmulator, image: Path,
                                                              tmp_path: Path) -> None:
    """Cancellation as Prefect does it: the flow runs under a runner, which stops it when the run is Cancelling."""
    fresh_comfy.configure(job_seconds=60.0)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run = prepare_run(wan_spec(image), force=True).run
    runner = python("from flows.video_pipeline import video_pipeline\n"
                    "video_pipeline.serve(name='gpu-cancel-test', limit=1)\n",
                    tmp_path / "runner.log", env={"PREFECT_RUNNER_POLL_FREQUENCY": "1"})
    try:
        wait_for(lambda: asyncio.run(_deployment_ready("video_pipeline/gpu-cancel-test")), 60, "the runner")
        flow_run = run_deployment("video_pipeline/gpu-cancel-test", timeout=0,
                                  parameters={"spec": run.spec, "run_id": run.run_id})
        wait_for(lambda: fresh_comfy.state.running is not None, 60, "the job to run on the GPU")
        prompt_id = fresh_comfy.state.running.prompt_id

        async def cancel() -> None:
            async with get_client() as client:
                await client.set_flow_run_state(flow_run.id, Cancelling(), force=True)

        asyncio.run(cancel())
        wait_for(lambda: fresh_comfy.stats()["interrupts"] >= 1, 30, "the interrupt to reach ComfyUI")
        wait_for(lambda: fresh_comfy.state.running is None, 10, "the GPU to stop the job")
        assert fresh_comfy.state.history[prompt_id]["status"]["messages"][-1][0] == "execution_interrupted"
        assert len(fresh_comfy.stats()["submits"]) == 1 and fresh_comfy.stats()["queue_deletes"] >= 1
        wait_for(lambda: asyncio.run(_state(flow_run.id)) == StateType.CANCELLED, 30, "the flow run to end")
        assert repo.get_run(run.run_id).status == "cancelled"
        assert step_row(run.run_id, "i2v_comfyui")["status"] == "cancelled"
    except BaseException:
        print((tmp_path / "runner.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        runner.terminate()
        runner.wait(30)
