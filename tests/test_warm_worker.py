"""The warm process worker (``reelflow.orchestration.warm_worker``) against the session's Prefect server: a run is
served by the
interpreter started before it, cancelling kills that process, other Prefect settings start the run cold, a
warm interpreter that died while waiting costs the run nothing, and a Prefect without the internals it patches
gets Prefect's plain process worker."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.runner import _starter_engine

import reelflow
from reelflow.orchestration import stack, warm_worker
from reelflow.orchestration.stack import Child
from tests.support.deployments import QUICK, SLOW, one_worker, read_flow_run, setup_stack, worker_of
from tests.support.files import make_image

COLD_MARK = "starting it cold"
FALLBACK_MARK = "running Prefect's plain process worker instead"
# The warm worker started by a Python whose Prefect lacks the engine launch the warm interpreters replace.
WITHOUT_LAUNCH_ENGINE = ("import prefect.runner._workspace_supervisor as supervisor; del supervisor._launch_engine; "
                         "from reelflow.orchestration.warm_worker import main; main()")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_image(tmp_path_factory.mktemp("warm-img") / "scene.png"))


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Child]:
    with one_worker(tmp_path_factory.mktemp("warm-workers")) as started:
        assert "reelflow.orchestration.warm_worker" in started.process.args
        yield started


def _state(pid: int) -> str | None:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _warm_children(worker: Child) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != worker.process.pid or _state(int(entry.name)) == "Z":
                continue
            if b"reelflow.orchestration.warm_engine" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _idle_interpreter(worker: Child, timeout: float = 60.0) -> int:
    """The pid of the one warm interpreter waiting for a run (earlier runs' processes have exited)."""
    deadline = time.monotonic() + timeout
    while len(children := _warm_children(worker)) != 1:
        assert time.monotonic() < deadline, f"warm interpreters of the worker: {children}"
        time.sleep(0.05)
    return children[0]


def _final(flow_run_id: str, timeout: float = 180.0) -> FlowRun:
    deadline = time.monotonic() + timeout
    while not (flow_run := read_flow_run(flow_run_id)).state or not flow_run.state.is_final():
        assert time.monotonic() < deadline, f"flow run {flow_run_id} still {flow_run.state}"
        time.sleep(0.1)
    return flow_run


def _until_gone(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _state(pid) not in (None, "Z"):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def _log(worker: Child) -> str:
    return worker.log.read_text(errors="replace")


def test_this_prefect_has_every_internal_the_warm_worker_patches() -> None:
    assert warm_worker.unexpected_internals() == []


def test_an_internal_with_another_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run_process(command: list[str], **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(_starter_engine, "run_process", run_process)
    assert warm_worker.unexpected_internals() == [
        "prefect.runner._starter_engine.run_process is not `async def run_process(command, *, stream_output, "
        "task_status, task_status_handler, **kwargs)`"]


def test_without_the_patched_internals_the_plain_process_worker_runs_the_flow(tmp_path: Path, image: str) -> None:
    """Runs before the module's warm worker starts (its first test comes next), so this worker takes the run."""
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    name = f"test-fallback-worker-{os.getpid()}"
    command, env, root = stack.worker_command(api_url, name, limit=3)
    assert command[1:3] == ["-m", "reelflow.orchestration.warm_worker"]
    fallback = stack.spawn(f"worker {name}", [command[0], "-c", WITHOUT_LAUNCH_ENGINE, *command[3:]],
                           tmp_path / "fallback.log", env, cwd=root)
    fallback.worker_name = name
    try:
        stack.wait_for(lambda: stack.worker_online(api_url, name), "worker", child=fallback)
        done = reelflow.wait(reelflow.submit({**QUICK, "image": image, "seed": 10}, via="deployment"), timeout=180)
        assert done.status == "completed", done.error
        flow_run = _final(done.prefect_flow_run_id or "")
        assert flow_run.state.type == StateType.COMPLETED
        assert asyncio.run(worker_of(api_url, [str(flow_run.id)])) == {str(flow_run.id): name}
        assert _warm_children(fallback) == []
        log = _log(fallback)
        assert log.count(FALLBACK_MARK) == 1, log
        assert "prefect.runner._workspace_supervisor._launch_engine is missing" in log
        args = (Path("/proc") / str(fallback.process.pid) / "cmdline").read_bytes().decode().split("\0")[:-1]
        assert args[args.index("worker"):] == ["worker", "start", "--pool", stack.WORK_POOL, "--type", "process",
                                               "--name", name, "--limit", "3"], args
    finally:
        stack.stop_worker(api_url, fallback)


def test_a_run_is_served_by_the_interpreter_started_before_it(worker: Child, image: str) -> None:
    idle = _idle_interpreter(worker)
    done = reelflow.wait(reelflow.submit({**QUICK, "image": image, "seed": 11}, via="deployment"), timeout=180)
    assert done.status == "completed", done.error
    assert done.video is not None and Path(done.video.path or "").is_file()
    flow_run = _final(done.prefect_flow_run_id or "")
    assert flow_run.state.type == StateType.COMPLETED
    assert flow_run.infrastructure_pid == str(idle)
    assert COLD_MARK not in _log(worker)
    assert _idle_interpreter(worker) != idle, "a fresh interpreter waits for the next run"


def test_cancelling_a_warm_run_ends_cancelled_and_kills_its_process(worker: Child, image: str) -> None:
    idle = _idle_interpreter(worker)
    run_id = reelflow.submit({**SLOW, "image": image, "seed": 12}, via="deployment")
    deadline = time.monotonic() + 120
    while reelflow.get(run_id).status != "running":
        assert time.monotonic() < deadline, reelflow.get(run_id)
        time.sleep(0.05)
    flow_run_id = reelflow.get(run_id).prefect_flow_run_id or ""
    assert read_flow_run(flow_run_id).infrastructure_pid == str(idle)

    cancelled = reelflow.cancel(run_id, timeout=60)
    assert cancelled.status == "cancelled" and cancelled.video is None
    assert _final(flow_run_id).state.type == StateType.CANCELLED
    _until_gone(idle)


def _deployment_run(image: str, seed: int, job_variables: dict[str, Any]) -> str:
    async def create() -> str:
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("video_pipeline/video-pipeline")
            flow_run = await client.create_flow_run_from_deployment(
                deployment.id, parameters={"spec": {**QUICK, "image": image, "seed": seed}, "force": True},
                job_variables=job_variables)
            return str(flow_run.id)

    return asyncio.run(create())


def test_a_run_with_other_prefect_settings_starts_cold_and_completes(worker: Child, image: str) -> None:
    idle = _idle_interpreter(worker)
    flow_run_id = _deployment_run(image, 13, {"env": {"PREFECT_LOGGING_LEVEL": "DEBUG"}})
    flow_run = _final(flow_run_id)
    assert flow_run.state.type == StateType.COMPLETED, flow_run.state
    assert flow_run.infrastructure_pid == str(idle), "the cold start replaces the warm process, same pid"
    assert f"flow run {flow_run_id} needs other Prefect settings" in _log(worker)


def test_a_warm_interpreter_that_died_while_waiting_does_not_lose_the_run(worker: Child, image: str) -> None:
    idle = _idle_interpreter(worker)
    os.kill(idle, signal.SIGKILL)
    _until_gone(idle)
    done = reelflow.wait(reelflow.submit({**QUICK, "image": image, "seed": 14}, via="deployment"), timeout=180)
    assert done.status == "completed", done.error
    flow_run = _final(done.prefect_flow_run_id or "")
    assert flow_run.infrastructure_pid not in (None, str(idle))
    assert worker.alive
