"""prefect.yaml, `prefect deploy --all`, `reelflow setup` (idempotent) and `reelflow up` (the whole stack)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.prefect_server import prefect_command
from reelflow.orchestration.provision import project_dir
from reelflow.orchestration.server_secrets import basic_authorization
from reelflow.orchestration.stack import descendants, panel_available
from reelflow.runs import dispatch
from tests.support.cli import REELFLOW
from tests.support.deployments import quiet_schedules, setup_stack, workers
from tests.support.polling import wait_until

DEPLOYMENTS = {"video_pipeline/video-pipeline", "batch_pipeline/batch-pipeline", "batch_pipeline/nightly-batch",
               "gpu_janitor/gpu-janitor"}
UP_TIMEOUT_S = 300


async def _deployments(api_url: str, auth: str | None = None) -> dict[str, object]:
    async with PrefectClient(api_url, auth_string=auth or os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        flows = {f.id: f.name for f in await client.read_flows()}
        return {f"{flows[d.flow_id]}/{d.name}": d for d in await client.read_deployments()}


async def _scheduled_runs(api_url: str, name: str) -> list:
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        return await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.SCHEDULED]))))


def test_prefect_deploy_all_registers_every_deployment_and_its_schedule() -> None:
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    env = {**os.environ, "PREFECT_API_URL": api_url}
    done = subprocess.run([*prefect_command(), "--no-prompt", "deploy", "--all"], cwd=project_dir(), env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    try:
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        found = asyncio.run(_deployments(api_url))
        assert set(found) >= DEPLOYMENTS
        for name in DEPLOYMENTS:
            deployment = found[name]
            assert deployment.work_pool_name == WORK_POOL
            assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
                "directory": "{{ $REELFLOW_PROJECT_DIR }}"}}]
        nightly = found["batch_pipeline/nightly-batch"].schedules
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly] == [("0 2 * * *", "UTC", True)]
        assert found["batch_pipeline/nightly-batch"].parameters["allow_empty"] is True
        janitor = found["gpu_janitor/gpu-janitor"].schedules
        assert [(s.schedule.interval.total_seconds(), s.active) for s in janitor] == [(300.0, True)]
        assert not found["video_pipeline/video-pipeline"].schedules

        deadline = time.monotonic() + 90
        while not (runs := asyncio.run(_scheduled_runs(api_url, "nightly-batch"))):
            assert time.monotonic() < deadline, "the server never scheduled the nightly batch"
            time.sleep(0.5)
        assert all((r.expected_start_time.hour, r.expected_start_time.minute) == (2, 0) for r in runs)
    finally:
        asyncio.run(quiet_schedules(api_url))


async def _provisioned(api_url: str) -> tuple[dict[str, str], list[str], list[tuple[str, int]], list[str]]:
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        flows = {f.id: f.name for f in await client.read_flows()}
        ids = {f"{flows[d.flow_id]}/{d.name}": str(d.id) for d in await client.read_deployments()}
        pools = [p.name for p in await client.read_work_pools()]
        limits = [(gcl.name, gcl.limit) for gcl in await client.read_global_concurrency_limits()]
        blocks = [(await client.read_block_type_by_slug(slug)).slug for slug in ("gpu-endpoint", "r2-bucket")]
    return ids, pools, limits, blocks


def test_setup_is_safe_to_run_twice() -> None:
    api_url = os.environ["PREFECT_API_URL"]
    first = setup_stack(api_url)
    before = asyncio.run(_provisioned(api_url))
    second = setup_stack(api_url)
    after = asyncio.run(_provisioned(api_url))
    assert "work pool: reelflow-local" in second and "already there" in second and "created" not in second
    assert "deployments:" in first
    ids, pools, limits, blocks = after
    assert ids == before[0] and set(ids) >= DEPLOYMENTS
    assert pools.count(WORK_POOL) == 1 and limits.count(("fal", 2)) == 1
    assert blocks == ["gpu-endpoint", "r2-bucket"]


def test_auto_dispatch_stops_using_the_deployment_once_its_last_worker_stops(tmp_path: Path) -> None:
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    with workers(api_url, tmp_path, 1):
        assert asyncio.run(dispatch.resolve_via("auto")) == "deployment"
    assert asyncio.run(dispatch.resolve_via("auto")) == "local", "runs would wait for a worker that is gone"


class _Lines:
    """Collects a subprocess's output lines in a thread, so the test can wait for one with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._queue.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no line matching {pattern!r} in:\n{''.join(self.lines)}"
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=min(remaining, 1.0)))


def _up(home: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update({"REELFLOW_HOME": str(home), "REELFLOW_PREFECT_PORT": "0", "COLUMNS": "200"})
    return subprocess.Popen([*REELFLOW, "up", "--panel-port", "0", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_up_starts_the_stack_refuses_a_second_up_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _up(home)
    output = _Lines(first)
    try:
        output.wait_for(r"all health checks green", UP_TIMEOUT_S)
        ui = output.wait_for(r"Prefect UI: (http://127\.0\.0\.1:\d+)", 5).group(1)
        if panel_available():
            panel = output.wait_for(r"panel:\s+(http://127\.0\.0\.1:\d+)", 5).group(1)
            assert httpx.get(f"{panel}/api/health", timeout=5).json()["status"] == "ok"
        else:
            output.wait_for(r"REST API \+ panel: not in this version", 5)
        api_url = f"{ui}/api"
        assert httpx.get(f"{api_url}/health", timeout=5).status_code == 200
        auth = (home / "secrets" / "prefect-auth").read_text().strip()
        assert httpx.post(f"{api_url}/work_pools/filter", json={}, timeout=5).status_code == 401
        workers = httpx.post(f"{api_url}/work_pools/{WORK_POOL}/workers/filter", json={}, timeout=5,
                             headers=basic_authorization(auth)).json()
        assert len(workers) == 1 and workers[0]["status"] == "ONLINE"
        found = asyncio.run(_deployments(api_url, auth))
        assert set(found) >= DEPLOYMENTS

        second = _up(home)
        second_out, _ = second.communicate(timeout=120)
        assert second.returncode == 1 and "already running" in second_out, second_out
        assert httpx.get(f"{api_url}/health", timeout=5).status_code == 200, "the second up disturbed the first"

        state = json.loads((home / "run" / "up.json").read_text())
        assert state["pid"] == first.pid and state["prefect_ui"] == ui
        children = [p for p in (state["server_pid"], state["panel_pid"], *state["worker_pids"]) if p]
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=120) == 0, "".join(output.lines)
        output.wait_for(r"^stopped", 10)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{api_url}/health", timeout=2)
        assert not (home / "run" / "up.json").exists()
        deadline = time.monotonic() + 30
        while not all(_dead(pid) for pid in children):
            assert time.monotonic() < deadline, f"left running: {[p for p in children if not _dead(p)]}"
            time.sleep(0.1)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_up_restarts_a_killed_part_on_its_port_and_stops_within_5_s(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    first = _up(home, "--port", str(port))
    output = _Lines(first)
    state_file = home / "run" / "up.json"
    try:
        output.wait_for(r"all health checks green", UP_TIMEOUT_S)
        api_url = f"http://127.0.0.1:{port}/api"
        auth = basic_authorization((home / "secrets" / "prefect-auth").read_text().strip())
        state = json.loads(state_file.read_text())
        panel = state["panel"]

        os.kill(state["panel_pid"], signal.SIGKILL)
        output.wait_for(rf"REST API \+ panel exited with -9; restarted at {re.escape(panel)}", 60)
        wait_until(lambda: _healthy(f"{panel}/api/health"), 90, "the panel back on its port")

        old_worker = state["workers"][0]
        warm = wait_until(lambda: [pid for pid in descendants(state["worker_pids"][0])
                                   if "warm_engine" in _cmdline(pid)], 60, "the worker's warm interpreter")
        os.kill(state["worker_pids"][0], signal.SIGKILL)
        wait_until(lambda: all(_dead(pid) for pid in warm), 30, "the warm interpreter to exit with its worker")
        output.wait_for(r"exited with -9; started worker", 60)
        new_worker = json.loads(state_file.read_text())["workers"][0]
        assert new_worker != old_worker
        wait_until(lambda: any(w["name"] == new_worker and w["status"] == "ONLINE" for w in httpx.post(
            f"{api_url}/work_pools/{WORK_POOL}/workers/filter", json={}, headers=auth, timeout=5).json()),
                   90, "the new worker online")

        os.kill(state["server_pid"], signal.SIGKILL)
        output.wait_for(rf"prefect server died; restarted at http://127\.0\.0\.1:{port}$", 120)
        assert _healthy(f"{api_url}/health") and _healthy(f"{panel}/api/health")
        assert first.poll() is None, "one dead part stopped the whole stack"

        state = json.loads(state_file.read_text())
        children = [state["server_pid"], state["panel_pid"], *state["worker_pids"]]
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0, "".join(output.lines)
        stopped_in = time.monotonic() - started
        assert stopped_in <= 5.0, f"stopping took {stopped_in:.1f} s"
        assert all(_dead(pid) for pid in children), [p for p in children if not _dead(p)]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
