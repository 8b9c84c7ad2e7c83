"""The offline pipeline end to end: CLI -> Prefect flow -> i2v_local -> local storage -> store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

from reelflow.core.media import probe_video
from tests.support.cli import run_cli_json
from tests.support.files import make_image, sha256_file
from tests.support.store import store_rows


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("img") / "scene.png")


async def _prefect_run(flow_run_id: str) -> tuple[str, dict[str, str]]:
    async with get_client() as client:
        flow_run = await client.read_flow_run(UUID(flow_run_id))
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
            task_run_filter=TaskRunFilter())
    return flow_run.state.type.value, {t.name.split("-")[0]: t.state.type.value for t in tasks}


async def _count_flow_runs() -> int:
    async with get_client() as client:
        return await client.count_flow_runs()


def test_run_renders_records_and_reuses(image: Path) -> None:
    args = ["run", "--model", "local-kenburns", "--image", str(image), "--prompt", "x", "--duration", "1.5",
            "--fps", "12", "--resolution", "320x240", "--seed", "5"]
    code, result = run_cli_json(*args)
    assert code == 0, result
    assert result["status"] == "completed" and result["cached"] is False and result["cost_usd"] == 0.0
    video = next(o for o in result["outputs"] if o["role"] == "video")
    assert video["content_type"] == "video/mp4"
    facts = probe_video(Path(video["path"]))
    assert (facts.frames, facts.fps, facts.width, facts.height) == (18, 12.0, 320, 240)

    rows = store_rows("SELECT sha256, bytes, width, height, frames, key FROM outputs "
                      "WHERE run_id = ? AND role = 'video'", result["run_id"])
    assert rows == [(sha256_file(Path(video["path"])), Path(video["path"]).stat().st_size, 320, 240, 18,
                     video["key"])]
    assert video["key"].endswith(f"{rows[0][0]}.mp4")
    steps = store_rows("SELECT name, status, prefect_task_run_id FROM steps WHERE run_id = ? ORDER BY id",
                       result["run_id"])
    assert [(s[0], s[1]) for s in steps] == [("i2v_local", "completed"), ("cache_r2:video", "completed")]
    assert all(s[2] for s in steps)

    state, tasks = asyncio.run(_prefect_run(result["prefect_flow_run_id"]))
    assert state == "COMPLETED"
    assert tasks == {"i2v_local": "COMPLETED", "cache_r2": "COMPLETED"}

    flow_runs_before = asyncio.run(_count_flow_runs())
    code, again = run_cli_json(*args)
    assert code == 0 and again["cached"] is True and again["run_id"] == result["run_id"]
    assert asyncio.run(_count_flow_runs()) == flow_runs_before, "a cached run must not start a flow"

    code, forced = run_cli_json(*args, "--force")
    assert code == 0 and forced["cached"] is False and forced["run_id"] != result["run_id"]
    assert asyncio.run(_count_flow_runs()) == flow_runs_before + 1


def test_python_api_run_and_get(image: Path) -> None:
    import reelflow

    spec = {"model": "local-kenburns", "image": str(image), "frames": 6, "fps": 6, "resolution": "128x96"}
    done = reelflow.run(spec, force=True)
    assert done.status == "completed" and done.video is not None
    again = reelflow.get(done.run_id)
    assert again.outputs == done.outputs
    kinds = {step.name for step in again.steps}
    assert kinds == {"i2v_local", "cache_r2:video"}
