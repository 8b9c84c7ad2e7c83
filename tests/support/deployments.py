"""Test helpers for deployments: `reelflow setup` against a server, real process workers, quiet schedules."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType

from reelflow.orchestration import stack
from reelflow.orchestration.stack import Child
from tests.support.cli import run_cli

SETUP_TIMEOUT_S = 300
QUICK = {"model": "local-kenburns", "frames": 6, "fps": 6, "resolution": "128x96"}  # a run of about a second
SLOW = {"model": "local-kenburns", "duration": 30.0, "fps": 30, "resolution": "1920x1080"}  # long enough to cancel


def setup_stack(api_url: str, env: dict[str, str] | None = None) -> str:
    """``reelflow setup`` as a user runs it; returns its output. Schedules are paused afterwards (see below)."""
    done = run_cli("setup", env={"PREFECT_API_URL": api_url, **(env or {})}, timeout=SETUP_TIMEOUT_S)
    assert done.returncode == 0, f"reelflow setup failed:\n{done.stdout}\n{done.stderr}"
    asyncio.run(quiet_schedules(api_url))
    return done.stdout


async def quiet_schedules(api_url: str) -> None:
    """Pause the scheduled deployments and drop their pending runs: other tests count flow runs, and a
    worker must not pick up a janitor run in the middle of a test."""
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        scheduled = [d for d in await client.read_deployments() if d.schedules]
        for deployment in scheduled:
            await client.pause_deployment(deployment.id)
        if not scheduled:
            return
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id for d in scheduled])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.SCHEDULED]))))
        for flow_run in runs:
            await client.delete_flow_run(flow_run.id)


@contextmanager
def workers(api_url: str, log_dir: Path, count: int, *, limit: int = 3,
            env: dict[str, str] | None = None) -> Iterator[list[Child]]:
    """``count`` real ``prefect worker start`` processes for the reelflow pool; stopped and forgotten after."""
    started: list[Child] = []
    try:
        for number in range(count):
            child = stack.start_worker(api_url, log_dir / f"worker-{number + 1}.log",
                                       name=f"test-worker-{number + 1}-{os.getpid()}", limit=limit, env=env)
            started.append(child)
        for child in started:
            stack.wait_for(lambda c=child: stack.worker_online(api_url, c.worker_name or ""), "worker", child=child)
        yield started
    finally:
        for child in started:
            stack.stop_worker(api_url, child)


@contextmanager
def one_worker(log_dir: Path) -> Iterator[Child]:
    """``reelflow setup`` against the session's server and one worker for the reelflow pool."""
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    with workers(api_url, log_dir, 1) as started:
        yield started[0]


def read_flow_run(flow_run_id: str) -> FlowRun:
    async def read() -> FlowRun:
        async with PrefectClient(os.environ["PREFECT_API_URL"],
                                 auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
            return await client.read_flow_run(UUID(flow_run_id))

    return asyncio.run(read())


async def worker_of(api_url: str, flow_run_ids: list[str]) -> dict[str, str | None]:
    """Which worker ran each flow run (workers label the runs they submit)."""
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        found = {}
        for flow_run_id in flow_run_ids:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            found[flow_run_id] = (flow_run.labels or {}).get("prefect.worker.name")
    return found
