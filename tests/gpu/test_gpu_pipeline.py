"""The self-hosted GPU pipeline against the ComfyUI, vast.ai and SwarmUI emulators, with a real Prefect server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

import reelflow
from blocks.gpu_endpoint import GpuEndpoint
from flows.fallback import adapt_spec
from reelflow.core.catalog import load_catalog
from reelflow.core.media import probe_video
from reelflow.core.spec import check_spec, parse_spec
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.cli import run_cli, run_cli_json
from tests.support.files import sha256_file
from tests.support.gpu import save_gpu, wan_spec
from tests.support.polling import when
from tests.support.store import event_kinds, step_row

pytestmark = pytest.mark.usefixtures("fast_polls")


async def _artifact(key: str) -> Any:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found[0] if found else None


def test_wan_pipeline_on_vast_completes_with_cost(fresh_comfy: ComfyEmulator, vast: VastEmulator,
                                                 image: Path) -> None:
    fresh_comfy.configure(required_headers={"Authorization": f"Bearer {PORTAL_TOKEN}"}, job_seconds=1.5,
                          progress_steps=3)
    save_gpu(provider="vastai", comfyui_url=fresh_comfy.url, vastai_instance_id=DEFAULT_INSTANCE_ID,
             vastai_api_key=API_KEY, vastai_api_url=vast.url, portal_token=PORTAL_TOKEN)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "completed", run.error
    video = run.video
    assert video is not None and video.content_type == "video/mp4"
    produced = fresh_comfy.output_files()
    assert len(produced) == 1 and sha256_file(Path(video.path)) == sha256_file(produced[0])
    facts = probe_video(Path(video.path))
    assert facts.frames == 17
    stats = fresh_comfy.stats()
    assert len(stats["submits"]) == 1 and stats["uploads"] == 1
    step = step_row(run.run_id, "i2v_comfyui")
    assert step["status"] == "completed" and step["job"] == stats["submits"][0]
    assert step["detail"]["usd_per_hour"] == 0.42 and step["detail"]["submits"] == 1
    assert 0 < step["cost"] == run.cost_usd
    assert abs(float(step["cost"]) - 0.42 * step["detail"]["gpu_seconds"] / 3600) < 1e-6
    kinds = event_kinds(run.run_id)
    assert any(k == "progress" and "(KSamplerAdvanced) step" in m for k, m in kinds)
    assert any(k == "slot" for k, _ in kinds)
    artifact = asyncio.run(_artifact(f"progress-{run.run_id}-i2v-comfyui"))
    assert artifact is not None and artifact.data == 100


def test_local_gpu_run_records_its_cost_as_unknown_not_free(fresh_comfy: ComfyEmulator, image: Path) -> None:
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "completed", run.error
    step = step_row(run.run_id, "i2v_comfyui")
    assert step["cost"] is None and step["detail"]["usd_per_hour"] is None and step["detail"]["gpu_seconds"] > 0
    code, shown = run_cli_json("status", run.run_id)
    assert code == 0 and shown["status"] == "completed" and shown["cost_usd"] is None
    human = run_cli("status", run.run_id)
    assert human.returncode == 0 and "$0.0000" not in human.stdout, human.stdout


def test_prompt_interrupted_in_comfyui_ends_the_run_cancelled(fresh_comfy: ComfyEmulator, image: Path) -> None:
    """Cancel pressed in ComfyUI's own page (``POST /interrupt``, no body) while the run's prompt samples."""
    fresh_comfy.configure(job_seconds=5.0)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    when(lambda: fresh_comfy.state.running is not None and fresh_comfy.state.current_node == "86",
         lambda: httpx.post(f"{fresh_comfy.url}/interrupt", timeout=10).raise_for_status())
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "cancelled", (run.status, run.error)
    assert "interrupted at node 86" in run.error
    step = step_row(run.run_id, "i2v_comfyui")
    assert step["status"] == "cancelled" and "interrupted at node 86" in step["error"]
    assert step["job"] == fresh_comfy.stats()["submits"][0] and len(fresh_comfy.stats()["submits"]) == 1


def test_missing_models_fail_with_one_clear_error_and_no_submit(fresh_comfy: ComfyEmulator, image: Path) -> None:
    installed = {"diffusion_models": ["wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"],
                 "loras": [], "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"], "vae": []}
    fresh_comfy.configure(installed_models=installed, combo_form="v3")
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "failed"
    missing = ["diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
               "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
               "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors", "vae/wan_2.1_vae.safetensors"]
    assert "missing 4 model file(s)" in run.error and all(name in run.error for name in missing)
    assert "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors" not in run.error
    stats = fresh_comfy.stats()
    assert stats["submits"] == [] and stats["uploads"] == 0


def test_websocket_dropped_mid_job_completes_by_polling_with_one_submit(fresh_comfy: ComfyEmulator,
                                                                         image: Path) -> None:
    fresh_comfy.configure(job_seconds=1.5, drop_websocket_after_s=0.2, silent_reconnects=True)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "completed", run.error
    stats = fresh_comfy.stats()
    assert len(stats["submits"]) == 1
    assert stats["ws_connects"] >= 2 and fresh_comfy.state.dropped, "the socket was dropped and reconnected"
    assert stats["calls"].get("GET /history/" + stats["submits"][0], 0) >= 2


def test_out_of_memory_frees_vram_and_runs_once_more(fresh_comfy: ComfyEmulator, image: Path) -> None:
    fresh_comfy.configure(error_node="87", error_times=1)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "completed", run.error
    stats = fresh_comfy.stats()
    assert len(stats["submits"]) == 2 and stats["frees"] == 1
    assert any("out of GPU memory in node 87 (VAEDecode)" in m for _, m in event_kinds(run.run_id))

    fresh_comfy.reset_stats()
    fresh_comfy.configure(error_times=None)
    failed = reelflow.run(wan_spec(image), force=True)
    assert failed.status == "failed" and "torch.OutOfMemoryError" in failed.error and "node 87" in failed.error
    assert len(fresh_comfy.stats()["submits"]) == 2, "one retry after an OOM, not more"


def test_job_lost_in_a_restart_is_said_plainly_and_resubmitted_only_when_allowed(
        fresh_comfy: ComfyEmulator, image: Path) -> None:
    fresh_comfy.configure(job_seconds=1.5)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    when(lambda: len(fresh_comfy.stats()["submits"]) == 1, fresh_comfy.restart)
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "failed"
    assert "has lost prompt" in run.error and "Not resubmitting" in run.error
    assert len(fresh_comfy.stats()["submits"]) == 1

    fresh_comfy.reset_stats()
    save_gpu(provider="local", comfyui_url=fresh_comfy.url, allow_resubmit_lost_jobs=True)
    when(lambda: len(fresh_comfy.stats()["submits"]) == 1, fresh_comfy.restart)
    again = reelflow.run(wan_spec(image), force=True)
    assert again.status == "completed", again.error
    submits = fresh_comfy.stats()["submits"]
    assert len(submits) == 2 and submits[0] != submits[1]
    assert step_row(again.run_id, "i2v_comfyui")["job"] == submits[1]


def test_moved_tunnel_is_found_through_the_portal_and_saved(fresh_comfy: ComfyEmulator, vast: VastEmulator,
                                                            image: Path) -> None:
    vast.configure(tunnels=[{"targetUrl": "http://localhost:18188", "tunnelUrl": fresh_comfy.url}])
    save_gpu(provider="vastai", comfyui_url="http://127.0.0.1:9", vastai_instance_id=DEFAULT_INSTANCE_ID,
             vastai_api_key=API_KEY, vastai_api_url=vast.url, portal_token=PORTAL_TOKEN)
    try:
        run = reelflow.run(wan_spec(image), force=True)
    finally:
        vast.reset()
    assert run.status == "completed", run.error
    assert GpuEndpoint.load("default").comfyui_url == fresh_comfy.url
    assert any("moved from http://127.0.0.1:9" in m for _, m in event_kinds(run.run_id))


def test_unreachable_gpu_falls_back_only_when_asked(image: Path) -> None:
    save_gpu(provider="local", comfyui_url="http://127.0.0.1:9")
    failed = reelflow.run(wan_spec(image), force=True)
    assert failed.status == "failed" and "unreachable" in failed.error

    save_gpu(provider="local", comfyui_url="http://127.0.0.1:9", fallback_model="local-kenburns")
    run = reelflow.run(wan_spec(image), force=True)
    assert run.status == "completed", run.error
    assert run.video is not None and probe_video(Path(run.video.path)).frames == 17
    fallback = [m for k, m in event_kinds(run.run_id) if k == "fallback"]
    assert len(fallback) == 1 and "local-kenburns" in fallback[0]
    gpu_step = step_row(run.run_id, "i2v_comfyui")
    assert gpu_step["status"] == "failed" and gpu_step["detail"]["fallback_model"] == "local-kenburns"
    assert step_row(run.run_id, "i2v_local")["status"] == "completed"


def test_fallback_spec_is_adapted_to_what_the_cloud_model_takes(image: Path) -> None:
    spec = parse_spec(wan_spec(image, frames=None, duration=3.0, negative_prompt="blur"))
    adapted, changed = adapt_spec(spec, load_catalog().get("wan-2.5-i2v"))
    assert adapted.model == "wan-2.5-i2v" and adapted.duration == 5.0 and adapted.frames is None
    assert adapted.resolution is None and adapted.fps is None and adapted.negative_prompt == "blur"
    assert changed == {"duration": 5.0, "frames": None, "fps": None, "resolution": None}
    check_spec(adapted)
