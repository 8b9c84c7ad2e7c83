"""The SwarmUI pipeline (wan-2.2-i2v-swarmui) against the SwarmUI emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import reelflow
from reelflow.core.media import probe_video
from tests.emulators.swarmui import SwarmEmulator, sample_mp4
from tests.support.gpu import save_gpu
from tests.support.store import step_row

SWARM = "wan-2.2-i2v-swarmui"

pytestmark = pytest.mark.usefixtures("fast_polls")


@pytest.fixture()
def swarm() -> Iterator[SwarmEmulator]:
    with SwarmEmulator() as emu:
        save_gpu(provider="local", swarmui_url=emu.url)
        yield emu


def _spec(image: Path) -> dict[str, object]:
    return {"model": SWARM, "image": str(image), "prompt": "waves rolling in", "frames": 17, "fps": 16, "seed": 3}


def test_swarmui_pipeline_completes_with_tagged_request(swarm: SwarmEmulator, image: Path) -> None:
    run = reelflow.run(_spec(image), force=True)
    assert run.status == "completed", run.error
    assert Path(run.video.path).read_bytes() == sample_mp4()
    assert probe_video(Path(run.video.path)).frames == 17
    payload = swarm.state.last_payload
    job_id = step_row(run.run_id, "i2v_swarmui")["job"]
    assert payload["extra_metadata"] == {"job_id": job_id} and job_id.startswith(run.run_id)
    assert (payload["videoframes"], payload["videofps"], payload["videocfg"], payload["seed"]) == (17, 16, 1.0, 3)
    assert swarm.stats()["generate_requests"] == 1


def test_dropped_socket_is_recovered_by_job_id_without_a_second_request(swarm: SwarmEmulator, image: Path) -> None:
    swarm.configure(drop_next=1, finish_delay_s=0.5)
    swarm.restart()  # the first call also renews an expired session
    run = reelflow.run(_spec(image), force=True)
    assert run.status == "completed", run.error
    stats = swarm.stats()
    assert stats["generate_requests"] == 1 and stats["calls"].get("ListImages", 0) >= 1


def test_lost_swarm_job_is_not_generated_again(swarm: SwarmEmulator, image: Path) -> None:
    swarm.configure(drop_next=1, lose_dropped_jobs=True, finish_delay_s=0.1)
    run = reelflow.run(_spec(image), force=True)
    assert run.status == "failed" and "not resubmitting" in run.error
    assert swarm.stats()["generate_requests"] == 1


def test_missing_swarm_models_are_named_before_any_request(swarm: SwarmEmulator, image: Path) -> None:
    swarm.configure(models=["OfficialStableDiffusion/sd_xl_base_1.0.safetensors"])
    run = reelflow.run(_spec(image), force=True)
    assert run.status == "failed"
    assert "wan2.2_i2v_high_noise_14B_fp8_scaled" in run.error and "wan2.2_i2v_low_noise_14B_fp8_scaled" in run.error
    assert swarm.stats()["generate_requests"] == 0
