"""Local processes next to the Prefect server: process workers and the REST API + panel, each health-checked.

``reelflow up`` composes them; ``reelflow worker`` starts one worker; tests use the same functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelflow.errors import ReelflowError
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.prefect_server import api_headers, prefect_command
from reelflow.settings import get_settings

WORKER_QUERY_SECONDS = 1
PANEL_MODULES = ("reelflow.web", "reelflow.cli.serve")
START_TIMEOUT_S = 90.0


@dataclass
class Child:
    """A background process this module started, with where its output goes."""

    name: str
    process: subprocess.Popen
    log: Path
    url: str | None = None
    worker_name: str | None = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def wait_for(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT_S,
             child: Child | None = None, interval: float = 0.2) -> None:
    """Poll ``check`` until true; fail early if ``child`` exits, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if child is not None and not child.alive:
            raise ReelflowError(f"{what}: {child.name} exited with {child.process.returncode}; see {child.log}")
        if time.monotonic() > deadline:
            raise ReelflowError(f"{what}: not ready after {timeout:.0f} s" + (f"; see {child.log}" if child else ""))
        time.sleep(interval)


def spawn(name: str, command: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> Child:
    """Start ``command`` in a session of its own, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=cwd, start_new_session=True)
    return Child(name=name, process=process, log=log)


def stop(child: Child, timeout: float = 20.0) -> None:
    """SIGTERM the child's process group, then SIGKILL whatever is left after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not child.alive:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout)


def project_dir() -> Path:
    from reelflow.orchestration.provision import project_dir as find

    return find()


def worker_command(api_url: str, name: str, *, pool: str = WORK_POOL, limit: int | None = None,
                   env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str], Path]:
    """Command, environment and folder of a process worker for the pool, polling every second.

    The worker is ``reelflow.orchestration.warm_worker`` (a Prefect process worker that keeps one flow-run interpreter
    started ahead of time), or plain ``prefect worker start --type process`` with ``REELFLOW_WARM_WORKER=0``.
    ``REELFLOW_PROJECT_DIR`` is what the deployments' pull step changes into on this host.
    """
    root = project_dir()
    full_env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_QUERY_SECONDS),
                "REELFLOW_PROJECT_DIR": str(root), **(env or {})}
    if get_settings().warm_worker:
        command = [sys.executable, "-m", "reelflow.orchestration.warm_worker", "--pool", pool, "--name", name]
        command += ["--limit", str(limit)] if limit else []
    else:
        command = plain_worker_command(pool, name, limit=limit)
    return command, full_env, root


def plain_worker_command(pool: str, name: str | None, *, limit: int | None = None) -> list[str]:
    """Prefect's own ``prefect worker start --type process``."""
    command = [*prefect_command(), "worker", "start", "--pool", pool, "--type", "process"]
    return command + (["--name", name] if name else []) + (["--limit", str(limit)] if limit else [])


def worker_name() -> str:
    return f"reelflow-{os.uname().nodename}-{uuid.uuid4().hex[:6]}"


def start_worker(api_url: str, log: Path, *, name: str | None = None, pool: str = WORK_POOL,
                 limit: int | None = None, env: dict[str, str] | None = None) -> Child:
    """Start a worker in the background (see ``worker_online`` for its health check)."""
    name = name or worker_name()
    command, full_env, root = worker_command(api_url, name, pool=pool, limit=limit, env=env)
    child = spawn(f"worker {name}", command, log, full_env, cwd=root)
    child.worker_name = name
    return child


def worker_online(api_url: str, name: str, pool: str = WORK_POOL) -> bool:
    try:
        response = httpx.post(f"{api_url}/work_pools/{pool}/workers/filter", json={}, timeout=5,
                              headers=api_headers())
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and any(
        w["name"] == name and w.get("status") == "ONLINE" for w in response.json())


def forget_worker(api_url: str, name: str, pool: str = WORK_POOL, timeout: float = 5.0) -> None:
    """Remove a stopped worker from the pool at once, so nothing thinks it is still there to take runs."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.delete(f"{api_url}/work_pools/{pool}/workers/{name}", timeout=timeout, headers=api_headers())


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (flow-run processes start sessions of their own, out of its group)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(stat.rpartition(")")[2].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def signal_groups(pids: list[int], sig: signal.Signals) -> None:
    """``sig`` to the process group of each pid (each one a session leader we started), and to the pid itself."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: list[int], deadline: float) -> None:
    """Until every pid has exited (children reaped) or ``deadline`` (``time.monotonic()``) passes."""
    from reelflow.orchestration.prefect_server import pid_alive

    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop_worker(api_url: str, worker: Child) -> None:
    stop(worker)
    if worker.worker_name:
        forget_worker(api_url, worker.worker_name)


def panel_available() -> bool:
    """Whether this version has the REST API + panel (``reelflow serve``)."""
    return all(importlib.util.find_spec(name) is not None for name in PANEL_MODULES)


def start_panel(api_url: str, port: int, log: Path) -> Child:
    """``reelflow serve`` on 127.0.0.1: its runs go to the deployment while a worker is online."""
    command = [sys.executable, "-m", "reelflow.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)]
    child = spawn("REST API + panel", command, log, {**os.environ, "PREFECT_API_URL": api_url})
    child.url = f"http://127.0.0.1:{port}"
    return child


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
