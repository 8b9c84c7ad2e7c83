"""SwarmUI client against the HTTP + websocket emulator."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import httpx
import pytest

from reelflow.core.domain import VideoParams
from reelflow.errors import ModelUnavailableError, ProviderError, SwarmSocketLostError
from reelflow.providers.swarmui import SwarmClient, frames_for, image_data_url
from reelflow.settings import SwarmWanSettings
from tests.emulators.swarmui import VIDEO, SwarmEmulator
from tests.support.cli import ROOT

IMAGE = ROOT / "reelflow" / "assets" / "sample.jpg"
PARAMS = VideoParams(prompt="a red fox runs through snow", negative_prompt="blurry", duration_s=5.0, seed=7)


@pytest.fixture(scope="module")
def emulator() -> Iterator[SwarmEmulator]:
    with SwarmEmulator() as emu:
        yield emu


@pytest.fixture()
def emu(emulator: SwarmEmulator) -> SwarmEmulator:
    emulator.reset()
    return emulator


@pytest.fixture()
async def swarm(emu: SwarmEmulator) -> AsyncIterator[SwarmClient]:
    async with SwarmClient(emu.url, poll_interval_s=0.02) as client:
        yield client


def _probe(path: Path) -> tuple[str, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, sum(1 for _ in container.decode(stream))


async def test_happy_path_streams_progress_and_downloads_a_real_mp4(
        swarm: SwarmClient, emu: SwarmEmulator, tmp_path: Path) -> None:
    progress: list[float] = []

    async def on_progress(overall: float, current: float) -> None:
        progress.append(overall)

    out = await swarm.generate_video("job-happy", IMAGE, PARAMS, on_progress=on_progress,
                                     download_dir=tmp_path)
    assert progress == [0.25, 0.5, 0.75, 1.0]
    assert out.media.content_type == "video/mp4" and out.media.path is not None
    assert _probe(Path(out.media.path)) == ("h264", VIDEO["frames"])
    assert out.fps == 16 and out.frames == 81 and (out.provider_job_id or "").startswith("View/local/raw/")
    sent = emu.state.last_payload or {}
    assert sent["extra_metadata"] == {"job_id": "job-happy"}
    assert sent["initimage"].startswith("data:image/jpeg;base64,")
    assert sent["model"] == "OfficialStableDiffusion/sd_xl_base_1.0.safetensors"
    assert sent["videomodel"] == "Wan/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
    assert sent["videoswapmodel"] == "Wan/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"
    expected = {"initimagecreativity": 0, "videoswappercent": 0.5, "videoframes": 81, "videosteps": 4,
                "videocfg": 1.0, "videofps": 16, "videoresolution": "Image Aspect, Model Res",
                "videoformat": "h264-mp4", "seed": 7, "prompt": PARAMS.prompt, "negativeprompt": "blurry",
                "images": 1}
    assert {k: sent[k] for k in expected} == expected
    stats = emu.stats()
    assert stats["generate_requests"] == 1 and stats["downloads"] == 1 and stats["sessions_created"] == 1


async def test_output_ref_carries_url_and_auth(emu: SwarmEmulator) -> None:
    emu.configure(swarm_token="swarm-secret", bearer_token="web-password")
    headers = {"Authorization": "Bearer web-password", "Cookie": "C.4242_auth_token=web-password"}
    async with SwarmClient(emu.url, swarm_token="swarm-secret", headers=headers) as swarm:
        out = await swarm.generate_video("job-ref", IMAGE, PARAMS)
        assert "swarm-secret" not in repr(swarm) and "web-password" not in repr(swarm)
    media = out.media
    assert media.url is not None and media.url.startswith(f"{emu.url}/View/local/raw/") and media.path is None
    assert "swarm_token=swarm-secret" in (media.headers or {})["Cookie"]
    async with httpx.AsyncClient() as http:
        resp = await http.get(media.url, headers=media.headers)
        assert resp.status_code == 200 and resp.content[4:8] == b"ftyp"
        assert (await http.get(media.url)).status_code == 401


async def test_missing_auth_is_a_clear_error(emu: SwarmEmulator) -> None:
    emu.configure(bearer_token="web-password")
    async with SwarmClient(emu.url) as swarm:
        with pytest.raises(ProviderError, match="401"):
            await swarm.list_models()


async def test_session_renewed_once_after_restart(
        swarm: SwarmClient, emu: SwarmEmulator, tmp_path: Path) -> None:
    await swarm.preflight()
    assert emu.stats()["sessions_created"] == 1
    emu.restart()
    out = await swarm.generate_video("job-restart", IMAGE, PARAMS, download_dir=tmp_path)
    assert out.media.path and emu.stats()["sessions_created"] == 2
    assert emu.stats()["ws_connections"] == 2 and emu.stats()["generate_requests"] == 1
    emu.restart()
    assert len(await swarm.list_models()) == 3
    assert emu.stats()["sessions_created"] == 3


async def test_missing_models_listed_in_one_error(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(models=["OfficialStableDiffusion/sd_xl_base_1.0.safetensors"])
    with pytest.raises(ModelUnavailableError) as info:
        await swarm.generate_video("job-missing", IMAGE, PARAMS)
    message = str(info.value)
    assert "wan2.2_i2v_high_noise_14B_fp8_scaled" in message
    assert "wan2.2_i2v_low_noise_14B_fp8_scaled" in message
    assert len(info.value.missing) == 2 and emu.stats()["generate_requests"] == 0


async def test_configurable_model_names(emu: SwarmEmulator) -> None:
    emu.configure(models=["base.safetensors", "hi.safetensors", "lo.safetensors"])
    settings = SwarmWanSettings(base_model="base", high_noise_model="hi", low_noise_model="lo", steps=8)
    async with SwarmClient(emu.url, settings=settings) as swarm:
        resolved = await swarm.preflight()
        await swarm.generate_video("job-names", IMAGE, PARAMS)
    assert resolved.high_noise == "hi.safetensors"
    assert (emu.state.last_payload or {})["videosteps"] == 8


async def test_error_message_becomes_provider_error(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(error_message="CUDA out of memory")
    with pytest.raises(ProviderError, match="CUDA out of memory"):
        await swarm.generate_video("job-error", IMAGE, PARAMS)
    assert emu.stats()["generate_requests"] == 1


async def test_dropped_socket_recovered_through_list_images(
        swarm: SwarmClient, emu: SwarmEmulator, tmp_path: Path) -> None:
    emu.configure(drop_socket_mid_job=True, finish_delay_s=0.3)
    out = await swarm.generate_video("job-drop", IMAGE, PARAMS, download_dir=tmp_path)
    assert _probe(Path(out.media.path or "")) == ("h264", VIDEO["frames"])
    stats = emu.stats()
    assert stats["generate_requests"] == 1
    assert stats["calls"]["GetCurrentStatus"] >= 1 and stats["calls"]["ListImages"] >= 1


async def test_lost_job_is_not_resubmitted_by_default(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(drop_socket_mid_job=True, lose_dropped_jobs=True, finish_delay_s=0.05)
    with pytest.raises(SwarmSocketLostError, match="not resubmitting"):
        await swarm.generate_video("job-lost", IMAGE, PARAMS)
    assert emu.stats()["generate_requests"] == 1


async def test_lost_job_resubmitted_once_when_allowed(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(drop_next=1, lose_dropped_jobs=True, finish_delay_s=0.05)
    out = await swarm.generate_video("job-resubmit", IMAGE, PARAMS, allow_resubmit=True)
    assert out.media.url and emu.stats()["generate_requests"] == 2


async def test_images_only_is_not_a_video(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(images_only=True)
    with pytest.raises(ProviderError, match="1321"):
        await swarm.generate_video("job-png", IMAGE, PARAMS)


async def test_discarded_output_is_no_output(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    emu.configure(discard_all=True)
    with pytest.raises(ProviderError, match="without any output"):
        await swarm.generate_video("job-discard", IMAGE, PARAMS)


async def test_data_url_output_is_written(swarm: SwarmClient, emu: SwarmEmulator, tmp_path: Path) -> None:
    emu.configure(data_url_output=True)
    out = await swarm.generate_video("job-data", IMAGE, PARAMS, download_dir=tmp_path)
    assert out.media.path and _probe(Path(out.media.path))[0] == "h264"


async def test_find_status_and_interrupt(swarm: SwarmClient, emu: SwarmEmulator) -> None:
    assert await swarm.find_output_by_job_id("nobody") is None
    await swarm.generate_video("job-find", IMAGE, PARAMS)
    found = await swarm.find_output_by_job_id("job-find")
    assert found is not None and found.startswith("View/local/raw/") and found.endswith(".mp4")
    assert not (await swarm.current_status()).busy
    await swarm.interrupt()
    assert emu.stats()["interrupts"] == 1


def test_payload_helpers() -> None:
    assert frames_for(5.0, 16) == 81 and frames_for(2.0, 24) == 49
    assert image_data_url(b"\x89PNG rest").startswith("data:image/png;base64,")
    assert image_data_url("data:image/webp;base64,AAAA") == "data:image/webp;base64,AAAA"


def test_emulator_runs_as_a_subprocess() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators.swarmui", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    try:
        line = lines.get(timeout=30)
        while not line.startswith("SWARM_EMULATOR_READY"):
            line = lines.get(timeout=30)
        url = json.loads(line.split(" ", 1)[1])["url"]
        session = httpx.post(f"{url}/API/GetNewSession", json={}).json()["session_id"]
        models = httpx.post(f"{url}/API/ListModels", json={"session_id": session, "path": "", "depth": 3})
        assert len(models.json()["files"]) == 3
    finally:
        proc.terminate()
        proc.wait(timeout=15)
