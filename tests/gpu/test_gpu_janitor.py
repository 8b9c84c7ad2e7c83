"""The GPU janitor against the vast.ai and ComfyUI emulators: stops an idle instance, never a busy one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.gpu_janitor import gpu_janitor
from reelflow.core.catalog.workflows import wan22_template
from reelflow.gpu.janitor import load_state, state_path
from reelflow.orchestration.concurrency import ensure_gpu_limit, gpu_limit_name, hold_slot
from reelflow.providers.comfyui import ComfyClient, new_prompt_id, output_prefix, render
from reelflow.store import repo
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, PORTAL_TOKEN, VastEmulator
from tests.support.files import make_image
from tests.support.gpu import asave_gpu, save_gpu
from tests.support.polling import wait_until as wait_for

INSTANCE = 777

pytestmark = pytest.mark.usefixtures("fast_polls")


@pytest.fixture()
def rented(vast: VastEmulator, fresh_comfy: ComfyEmulator) -> Iterator[VastEmulator]:
    """A vast.ai instance up for an hour at $0.50/hour, serving the ComfyUI emulator, saved as the GPU endpoint."""
    vast.reset()
    state_path(INSTANCE).unlink(missing_ok=True)
    vast.add_instance(INSTANCE, dph_total=0.5, uptime_s=3600)
    save_gpu(provider="vastai", comfyui_url=fresh_comfy.url, vastai_instance_id=INSTANCE, vastai_api_key=API_KEY,
             vastai_api_url=vast.url, portal_token=PORTAL_TOKEN)
    yield vast
    vast.reset()


def _status(vast: VastEmulator) -> str:
    return vast.stats()["instances"][INSTANCE]["actual_status"]


async def _start_long_job(emu: ComfyEmulator, tmp_path: Path) -> tuple[ComfyClient, str]:
    client = ComfyClient(emu.url)
    name = await client.upload_image(make_image(tmp_path / "in.png", size=(64, 64)).read_bytes())
    prompt_id = new_prompt_id("janitor-test")
    graph = render(wan22_template(), upload_name=name, params=_params(), filename_prefix=output_prefix(prompt_id))
    await client.submit(graph, prompt_id, "janitor-test")
    return client, prompt_id


def _params():
    from reelflow.core.domain import VideoParams

    return VideoParams(prompt="x", duration_s=1.0, frames=17, fps=16, width=256, height=256, seed=1)


async def test_janitor_stops_an_idle_instance_and_logs_the_saving(rented: VastEmulator) -> None:
    result = await gpu_janitor(idle_minutes=10)
    assert result["action"] == "stopped", result
    assert _status(rented) == "exited" and rented.stats()["stop_calls"] == 1
    assert result["usd_per_hour_saved"] == 0.5 and result["usd_per_day_saved"] == 12.0
    assert result["storage_usd_per_hour"] == pytest.approx(0.15 * 40 / 730, abs=1e-6)
    assert 59 < result["idle_minutes"] < 62 and "saves $0.500/hour" in result["reason"]
    assert load_state(INSTANCE)["stops"] == 1
    again = await gpu_janitor(idle_minutes=10)
    assert again["action"] == "none" and rented.stats()["stop_calls"] == 1


async def test_janitor_leaves_a_busy_instance_running(rented: VastEmulator, fresh_comfy: ComfyEmulator,
                                                      tmp_path: Path) -> None:
    fresh_comfy.configure(job_seconds=30.0)
    client, prompt_id = await _start_long_job(fresh_comfy, tmp_path)
    try:
        busy = await gpu_janitor(idle_minutes=10)
        assert busy["action"] == "busy" and "ComfyUI runs 1" in busy["reason"]
        assert _status(rented) == "running" and rented.stats()["stop_calls"] == 0
    finally:
        await client.cancel(prompt_id)
        await client.aclose()
    await asyncio.to_thread(wait_for, lambda: fresh_comfy.state.running is None, 10, "the job to stop")
    after = await gpu_janitor(idle_minutes=10)
    assert after["action"] == "idle" and after["idle_minutes"] < 1, "idle since the job, not since the start"
    assert _status(rented) == "running" and rented.stats()["stop_calls"] == 0


async def test_janitor_waits_for_runs_in_flight_and_jobs_holding_a_slot(rented: VastEmulator) -> None:
    repo.create_run(run_id="janitor-inflight", idempotency_key="j", spec={}, model_id="wan-2.2-i2v-comfyui",
                    backend="comfyui")
    repo.mark_run("janitor-inflight", "running")
    try:
        busy = await gpu_janitor(idle_minutes=10)
    finally:
        repo.mark_run("janitor-inflight", "failed", error="test over")
    assert busy["action"] == "busy" and "janitor-inflight is running" in busy["reason"]
    state_path(INSTANCE).unlink()  # forget that it was just seen busy: idle for an hour again

    name = gpu_limit_name("default")
    await ensure_gpu_limit(name, 1)
    async with hold_slot(name):
        held = await gpu_janitor(idle_minutes=10)
    assert held["action"] == "busy" and "holds a GPU slot" in held["reason"]
    assert _status(rented) == "running" and rented.stats()["stop_calls"] == 0


async def test_janitor_without_a_vast_instance_does_nothing(fresh_comfy: ComfyEmulator) -> None:
    await asave_gpu(provider="local", comfyui_url=fresh_comfy.url)
    result = await gpu_janitor()
    assert result["action"] == "none" and "no vast.ai instance" in result["reason"]
