"""The fal provider against the fal emulator (HTTPS on 127.0.0.1, real fal-client).

fal-client reads its hosts when imported, so every scenario runs in a fresh process
(``tests/support/fal_scenario.py``) whose environment points at the emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelflow.core.catalog import load_catalog
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.errors import ProviderError, SpecError
from reelflow.providers import fal
from tests.emulators.fal import EmulatorConfig, FalEmulator
from tests.support.cli import ROOT

WAN = "fal-ai/wan-25-preview/image-to-video"
PIXEL = "data:image/png;base64,AAAA"
Env = dict[str, str]


def _clean_env() -> Env:
    drop = ("FAL_", "SSL_CERT_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def run_op(env: Env, **op: Any) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "tests.support.fal_scenario", json.dumps(op)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"runner failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalEmulator]:
    config = EmulatorConfig(processing_s=0.4)
    with FalEmulator(cert_dir=tmp_path_factory.mktemp("fal-certs"), config=config) as emu:
        yield emu


@pytest.fixture()
def emu(emulator: FalEmulator) -> FalEmulator:
    emulator.reset()
    return emulator


@pytest.fixture()
def env(emu: FalEmulator) -> Env:
    return {**_clean_env(), **emu.env()}


def test_arguments_follow_each_endpoint_schema() -> None:
    catalog = load_catalog()

    def video(model_id: str, **changes: Any) -> dict[str, Any]:
        model = catalog.get(model_id)
        inputs = model.inputs
        defaults = {"duration_s": inputs.default_duration, "resolution": inputs.default_resolution}
        params = VideoParams(**{"prompt": "p", "negative_prompt": "n", "seed": 9, **defaults, **changes})
        return fal.build_arguments(model, params, PIXEL)

    assert video("wan-2.5-i2v") == {"prompt": "p", "image_url": PIXEL, "duration": "5", "resolution": "720p",
                                    "negative_prompt": "n", "seed": 9}
    assert video("kling-2.1-master-i2v", duration_s=10.0) == {
        "prompt": "p", "image_url": PIXEL, "duration": "10", "negative_prompt": "n"}
    kling3 = video("kling-3-pro-i2v")
    assert kling3["start_image_url"] == PIXEL and "image_url" not in kling3
    assert kling3["generate_audio"] is False
    veo = video("veo-3.1-i2v", duration_s=6.0)
    assert (veo["duration"], veo["generate_audio"], veo["resolution"]) == ("6s", False, "720p")
    image_params = ImageParams(prompt="f", width=512, height=768, seed=3)
    flux = fal.build_arguments(catalog.get("flux-dev"), image_params, None)
    assert flux == {"prompt": "f", "image_size": {"width": 512, "height": 768}, "seed": 3, "num_images": 1}
    with pytest.raises(SpecError, match="4, 6, 8"):
        video("veo-3.1-i2v", duration_s=5.0)
    with pytest.raises(SpecError, match="input image"):
        fal.build_arguments(catalog.get("wan-2.5-i2v"), VideoParams(prompt="p", duration_s=5, seed=1), None)
    with pytest.raises(SpecError, match="not fal"):
        local = catalog.get("local-kenburns")
        fal.build_arguments(local, VideoParams(prompt="p", duration_s=3, seed=1), PIXEL)


def test_outputs_parse_or_fail_loudly() -> None:
    video = {"url": "https://cdn/x.mp4", "width": 1280, "height": 720, "fps": 16, "duration": 5.06,
             "num_frames": 81}
    out = fal.parse_video_output({"video": video}, request_id="r1")
    assert (out.media.url, out.media.content_type, out.width, out.fps, out.frames, out.provider_job_id) == (
        "https://cdn/x.mp4", "video/mp4", 1280, 16.0, 81, "r1")
    image = fal.parse_image_output({"images": [{"url": "https://cdn/i.png", "width": 8, "height": 6}]})
    assert (image.media.content_type, image.role, image.height) == ("image/png", "image", 6)
    for empty in ({}, {"video": {"url": ""}}, {"video": None}, {"images": []}):
        with pytest.raises(ProviderError, match="no video URL"):
            fal.parse_video_output(empty)
    with pytest.raises(ProviderError, match="no image URL"):
        fal.parse_image_output({"video": {"url": "https://cdn/x.mp4"}})


def test_small_image_is_inlined_without_credentials() -> None:
    reference = asyncio.run(fal.image_reference(b"\x89PNG-bytes", "image/png"))
    assert reference == "data:image/png;base64,iVBORy1ieXRlcw=="


def test_happy_path_reports_queue_positions_logs_and_real_media(emu: FalEmulator, env: Env) -> None:
    emu.configure(account_concurrency=1)
    out = run_op(env, op="run", model="wan-2.5-i2v", blockers=2)
    assert "error" not in out, out
    updates = out["updates"]
    assert [u["position"] for u in updates if u["type"] == "Queued"] == [1, 0]
    logs = [line for u in updates if u["type"] != "Queued" for line in u["logs"]]
    assert logs == [f"step {k}/4" for k in range(1, 5)]
    assert updates[-1] == {"type": "Completed", "logs": [], "error": None}
    assert out["output"]["media"]["url"].startswith(emu.base_url + "/media/")
    assert (out["output"]["width"], out["output"]["frames"], out["output"]["provider_job_id"]) == (
        64, 8, out["request_id"])
    media = out["media"]
    assert (media["frames"], media["width"], media["content_type"]) == (8, 64, "video/mp4")
    stats = emu.stats()
    assert stats["submits"] == {"total": 3, "by_endpoint": {WAN: 3}}
    assert stats["max_in_progress"] == 1
    assert stats["jobs"][out["request_id"]]["arguments"]["duration"] == "5"


def test_every_catalog_model_is_accepted_and_concurrency_is_capped(emu: FalEmulator, env: Env) -> None:
    models = [m.id for m in load_catalog().models if m.backend == "fal" and m.kind != "llm"]
    out = run_op(env, op="many", models=models)
    for model_id in models:
        run = out["runs"][model_id]
        assert "error" not in run, (model_id, run)
        assert run["output"]["media"]["url"] and run["media"]["bytes"] > 0
    flux = out["runs"]["flux-schnell"]
    assert (flux["output"]["role"], flux["media"]["width"], flux["media"]["height"]) == ("image", 1024, 768)
    assert flux["media"]["content_type"] == "image/jpeg"
    stats = emu.stats()
    assert stats["submits"]["total"] == len(models) and stats["completed"] == len(models)
    assert stats["max_in_progress"] == 2


def test_422_at_submit_carries_the_field_detail(emu: FalEmulator, env: Env) -> None:
    emu.configure(fail_submit_422=True)
    error = run_op(env, op="run", endpoint=WAN, arguments={"prompt": "p", "image_url": PIXEL})["error"]
    assert error["type"] == "FalRequestError" and "ProviderError" in error["bases"]
    assert "body.prompt: rejected" in error["message"] and error["attrs"]["status_code"] == 422
    emu.configure(fail_submit_422=False)
    wrong_field = {"prompt": "p", "image_url": PIXEL, "duration": "5"}
    kling3 = "fal-ai/kling-video/v3/pro/image-to-video"
    error = run_op(env, op="run", endpoint=kling3, arguments=wrong_field)["error"]
    assert "body.start_image_url: field required" in error["message"]
    assert emu.stats()["submits"]["total"] == 0


def test_completed_then_422_at_result_is_a_failure_with_detail(emu: FalEmulator, env: Env) -> None:
    emu.configure(fail_result_422=True)
    out = run_op(env, op="run", model="wan-2.5-i2v")
    assert out["updates"][-1]["type"] == "Completed"
    assert "output" not in out
    error = out["error"]
    assert error["type"] == "FalRequestError" and error["attrs"]["status_code"] == 422
    assert "body.image_url: could not load image" in error["message"]
    assert error["attrs"]["request_id"] == out["request_id"]
    assert emu.stats()["result_calls"] >= 1


def test_429_burst_on_status_is_retried_to_completion(emu: FalEmulator, env: Env) -> None:
    out = run_op(env, op="run", model="wan-2.5-i2v", admin_after_submit={"burst_429": 5})
    assert "error" not in out, out
    assert out["media"]["frames"] == 8
    stats = emu.stats()
    assert stats["rate_limited"] == 5 and stats["completed"] == 1 and stats["submits"]["total"] == 1


def test_status_500s_are_retried_then_give_up_as_transient(emu: FalEmulator, env: Env) -> None:
    emu.configure(status_500_count=3)
    out = run_op(env, op="run", model="wan-2.5-i2v")
    assert "error" not in out, out
    assert emu.stats()["status_calls"] >= 4
    emu.configure(status_500_count=1000)
    error = run_op(env, op="run", model="wan-2.5-i2v", attempts=3)["error"]
    assert error["type"] == "TransientProviderError" and "HTTP 500" in error["message"]


def test_one_retry_layer_bounds_each_call(emu: FalEmulator, env: Env) -> None:
    """fal-client's own retry loop is off: a call rate-limited for good makes ``attempts`` requests, no more."""
    out = run_op(env, op="run", model="wan-2.5-i2v", attempts=3, admin_after_submit={"burst_429": 1000})
    assert out["error"]["type"] == "TransientProviderError" and "HTTP 429" in out["error"]["message"]
    assert emu.stats()["rate_limited"] == 3 and emu.stats()["submits"]["total"] == 1


def test_deadline_cancels_the_queued_request(emu: FalEmulator, env: Env) -> None:
    emu.configure(queue_delay_s=60)
    out = run_op(env, op="run", model="wan-2.5-i2v", deadline_s=1.0)
    error = out["error"]
    assert error["type"] == "FalDeadlineError" and "1 s deadline" in error["message"]
    assert error["attrs"]["cancel_note"] == "cancel requested"
    assert out["updates"] == [{"type": "Queued", "position": 0}]
    assert out["elapsed_s"] < 5
    stats = emu.stats()
    assert stats["cancels"] == [out["request_id"]]
    assert stats["jobs"][out["request_id"]]["status"] == "CANCELLED"


def test_status_and_cancel_by_request_id(emu: FalEmulator, env: Env) -> None:
    emu.configure(queue_delay_s=60)
    out = run_op(env, op="lifecycle", model="veo-3.1-i2v")
    assert out["status_before"] == {"type": "Queued", "position": 0}
    assert out["status_after"] == {"type": "Completed", "logs": [], "error": "Request was cancelled"}
    second = out["second_cancel"]
    assert second["type"] == "FalRequestError" and second["attrs"]["status_code"] == 400
    assert emu.stats()["cancels"] == [out["request_id"]] * 2


def test_a_stalled_status_call_cannot_outlive_the_deadline(emu: FalEmulator, env: Env) -> None:
    emu.configure(status_stall_s=3)
    out = run_op(env, op="run", model="wan-2.5-i2v", deadline_s=1.0, call_timeout_s=30)
    assert out["error"]["type"] == "FalDeadlineError" and out["elapsed_s"] < 2.5
    emu.configure(status_stall_s=0)
    assert emu.stats()["cancels"] == [out["request_id"]]


def test_missing_credentials_fail_before_any_request(emu: FalEmulator, env: dict[str, str],
                                                     tmp_path: Path) -> None:
    no_key = {k: v for k, v in env.items() if k != "FAL_KEY"} | {"HOME": str(tmp_path),
                                                                 "FAL_HOME_DIR": str(tmp_path)}
    out = run_op(no_key, op="credentials", endpoint=WAN)
    assert "FAL_KEY" in out["missing"]
    for call in ("submit", "wait"):
        assert out[call]["type"] == "ModelUnavailableError" and "FAL_KEY" in out[call]["message"]
    assert emu.stats()["requests_total"] == 0


def test_wait_resumes_from_a_stored_request_id_in_a_fresh_process(emu: FalEmulator, env: Env) -> None:
    emu.configure(processing_s=2.5)
    first = run_op(env, op="run", model="wan-2.5-i2v", submit_only=True)
    request_id = first["request_id"]
    assert emu.stats()["jobs"][request_id]["status"] != "COMPLETED"
    second = run_op(env, op="run", model="wan-2.5-i2v", request_id=request_id)
    assert "error" not in second, second
    assert second["updates"], "the resumed wait polls the stored request"
    assert second["output"]["provider_job_id"] == request_id and second["media"]["frames"] == 8
    assert emu.stats()["submits"]["total"] == 1


def test_large_image_is_uploaded_through_fal_client(emu: FalEmulator, env: Env) -> None:
    out = run_op(env, op="image_reference", size=fal.INLINE_IMAGE_LIMIT + 1)
    assert "error" not in out, out
    assert out["reference_prefix"].startswith(emu.base_url + "/media/uploads/") and out["same_bytes"]
    assert emu.stats()["uploads"] == 1


def test_standalone_emulator_process_takes_knobs_over_http(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tests.emulators.fal", "--cert-dir", str(tmp_path),
               "--processing-s", "0.2"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while not line.startswith("FAL_EMULATOR_READY") and time.monotonic() < deadline:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line or proc.poll() is None, "emulator process exited"
        ready = json.loads(line.removeprefix("FAL_EMULATOR_READY "))
        verify = ssl.create_default_context(cafile=ready["ca_path"])
        with httpx.Client(base_url=ready["base_url"], verify=verify, timeout=10) as admin:
            assert admin.post("/_admin/config", json={"fail_submit_422": True}).json()["fail_submit_422"]
            error = run_op({**_clean_env(), **ready["env"]}, op="run", model="wan-2.5-i2v")["error"]
            assert error["attrs"]["status_code"] == 422
            admin.post("/_admin/reset")
            out = run_op({**_clean_env(), **ready["env"]}, op="run", model="wan-2.5-i2v")
            assert out["media"]["frames"] == 8
            stats = admin.get("/_admin/stats").json()
        assert stats["submits"]["total"] == 1 and stats["completed"] == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
