"""``reelflow.submit/get/wait/cancel`` against the session's Prefect server, with a real process worker."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.objects import StateType

import reelflow
from reelflow.errors import SpecError
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.stack import Child
from reelflow.runs import dispatch
from reelflow.store import owners, repo
from tests.support.deployments import QUICK, SLOW, one_worker, read_flow_run, worker_of
from tests.support.files import make_image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_image(tmp_path_factory.mktemp("api-img") / "scene.png"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    with one_worker(tmp_path_factory.mktemp("api-workers")) as started:
        yield started


def _until_status(run_id: str, status: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while reelflow.get(run_id).status != status:
        assert time.monotonic() < deadline, f"run {run_id} never reached {status}: {reelflow.get(run_id).status}"
        time.sleep(0.05)


def test_submit_runs_through_the_deployment_on_a_worker(worker: Child, image: str) -> None:
    assert asyncio.run(dispatch.resolve_via("auto")) == "deployment"
    started = time.monotonic()
    run_id = reelflow.submit({**QUICK, "image": image, "seed": 1})
    assert time.monotonic() - started < 10
    queued = reelflow.get(run_id)
    assert queued.status in ("queued", "running") and queued.prefect_flow_run_id

    done = reelflow.wait(run_id, timeout=180)
    assert done.status == "completed", done.error
    assert done.video is not None and Path(done.video.path or "").is_file()
    flow_run = read_flow_run(done.prefect_flow_run_id or "")
    assert flow_run.state.type == StateType.COMPLETED and flow_run.deployment_id is not None
    assert asyncio.run(worker_of(os.environ["PREFECT_API_URL"], [str(flow_run.id)])) == {
        str(flow_run.id): worker.worker_name}

    assert reelflow.submit({**QUICK, "image": image, "seed": 1}) == run_id, "an identical finished run is reused"


def test_bad_input_is_refused_before_anything_is_recorded(image: str) -> None:
    before = repo.list_runs(limit=1)[1]
    with pytest.raises(SpecError) as caught:
        reelflow.submit({**QUICK, "image": image, "fps": 500})
    assert caught.value.field == "fps"
    assert repo.list_runs(limit=1)[1] == before


def test_wait_times_out_then_cancel_stops_the_worker_run(worker: Child, image: str) -> None:
    run_id = reelflow.submit({**SLOW, "image": image, "seed": 2}, via="deployment")
    _until_status(run_id, "running")
    with pytest.raises(TimeoutError):
        reelflow.wait(run_id, timeout=0.5)

    cancelled = reelflow.cancel(run_id, timeout=60)
    assert cancelled.status == "cancelled" and cancelled.video is None
    assert [s.status for s in cancelled.steps if s.name == "i2v_local"] == ["cancelled"]
    assert read_flow_run(cancelled.prefect_flow_run_id or "").state.type == StateType.CANCELLED
    assert reelflow.cancel(run_id).status == "cancelled", "cancelling a finished run changes nothing"


def test_cancel_before_a_worker_takes_the_run(worker: Child, image: str) -> None:
    async def pause(paused: bool) -> None:
        async with get_client() as client:
            await client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=paused))

    asyncio.run(pause(True))
    try:
        run_id = reelflow.submit({**QUICK, "image": image, "seed": 3}, via="deployment")
        flow_run_id = reelflow.get(run_id).prefect_flow_run_id or ""
        assert read_flow_run(flow_run_id).state.type == StateType.SCHEDULED
        cancelled = reelflow.cancel(run_id, timeout=30)
    finally:
        asyncio.run(pause(False))
    assert cancelled.status == "cancelled" and not cancelled.steps
    assert read_flow_run(flow_run_id).state.type == StateType.CANCELLED


def test_submit_local_runs_and_cancels_in_a_detached_child(image: str) -> None:
    run_id = reelflow.submit({**QUICK, "image": image, "seed": 4}, via="local")
    done = reelflow.wait(run_id, timeout=120)
    assert done.status == "completed" and done.video is not None
    assert owners.owner_of(run_id)[0] != owners.me(), "rendered by a child process, not this one"
    assert read_flow_run(done.prefect_flow_run_id or "").deployment_id is None

    slow_id = reelflow.submit({**SLOW, "image": image, "seed": 5}, via="local")
    _until_status(slow_id, "running")
    cancelled = reelflow.cancel(slow_id, timeout=60)
    assert cancelled.status == "cancelled" and cancelled.video is None
    assert read_flow_run(cancelled.prefect_flow_run_id or "").state.type == StateType.CANCELLED
