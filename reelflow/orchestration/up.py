"""``reelflow up``: the whole local stack in one process group, one ``up`` per REELFLOW_HOME at a time.

Prefect server (SQLite in REELFLOW_HOME, or PostgreSQL), ``reelflow setup``, process worker(s) and the
REST API + panel when this version has one; every part is health-checked before the next starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reelflow.core import filelock
from reelflow.errors import AlreadyUpError, ReelflowError
from reelflow.orchestration import prefect_server, stack
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.prefect_server import LocalServer, free_port
from reelflow.settings import Settings


@dataclass
class UpOptions:
    port: int | None = None
    database_url: str | None = None
    workers: int = 1
    worker_limit: int | None = 4
    panel_port: int = 8000
    panel: bool = True
    setup: bool = True


@dataclass
class LocalStack:
    settings: Settings
    options: UpOptions
    say: Callable[[str], None] = print
    server: LocalServer | None = None
    owns_server: bool = False
    workers: list[stack.Child] = field(default_factory=list)
    panel: stack.Child | None = None
    _lock: filelock.FileLock | None = None

    @property
    def state_file(self):
        return self.settings.run_dir / "up.json"

    def claim(self) -> None:
        """Take the ``up`` lock for this REELFLOW_HOME, or raise ``AlreadyUpError`` describing the running one."""
        self._lock = filelock.try_acquire(self.settings.run_dir / "up.lock")
        if self._lock is None:
            try:
                state = json.loads(self.state_file.read_text())
            except (OSError, ValueError):
                state = {}
            raise AlreadyUpError(state)

    def start(self) -> dict[str, Any]:
        self._start_server()
        assert self.server is not None
        api_url = self.server.api_url
        if self.options.setup:
            from reelflow.orchestration import provision

            self.say("registering blocks, limits, the work pool and the deployments...")
            report = asyncio.run(provision.setup(api_url))
            self.say(f"  deployments: {', '.join(report.deployments)}")
        for number in range(self.options.workers):
            worker = stack.start_worker(api_url, self.settings.run_dir / f"worker-{number + 1}.log",
                                        limit=self.options.worker_limit)
            self.workers.append(worker)
            stack.wait_for(lambda w=worker: stack.worker_online(api_url, w.worker_name or ""), "worker", child=worker)
        self.say(f"  {len(self.workers)} worker(s) online in pool '{WORK_POOL}'")
        self._start_panel()
        state = {"pid": os.getpid(), "prefect_ui": self.server.url, "prefect_api": api_url,
                 "panel": self.panel.url if self.panel else None, "server_pid": self.server.pid,
                 "workers": [w.worker_name for w in self.workers], "worker_pids": [w.process.pid for w in self.workers],
                 "panel_pid": self.panel.process.pid if self.panel else None}
        self.state_file.write_text(json.dumps(state))
        return state

    def _start_server(self) -> None:
        running = prefect_server.running_server(self.settings)
        if running and self.options.database_url:
            raise ReelflowError(f"a Prefect server is already running at {running.url}; stop it with "
                                "`reelflow server stop` before starting one on another database")
        if running:
            self.say(f"reusing the Prefect server already running at {running.url}")
            self.server = running
            return
        database = "PostgreSQL" if self.options.database_url else f"SQLite in {self.settings.prefect_home}"
        self.say(f"starting the Prefect server ({database})...")
        self.server = prefect_server.start_server(self.settings, port=self.options.port,
                                                   database_url=self.options.database_url)
        self.owns_server = True

    def _start_panel(self) -> None:
        if not self.options.panel:
            return
        if not stack.panel_available():
            self.say("  REST API + panel: not in this version of reelflow (skipped)")
            return
        assert self.server is not None
        self.panel = stack.start_panel(self.server.api_url, free_port(self.options.panel_port, "the panel"),
                                       self.settings.run_dir / "panel.log")
        stack.wait_for(lambda: stack.http_ok(f"{self.panel.url}/api/health"), "REST API + panel", child=self.panel)

    def health(self) -> dict[str, bool]:
        """Each part's health check, as it is now."""
        checks = {"prefect server": bool(self.server and prefect_server.healthy(self.server.api_url))}
        for worker in self.workers:
            checks[worker.name] = worker.alive and bool(self.server) and stack.worker_online(
                self.server.api_url, worker.worker_name or "")
        if self.panel:
            checks["panel"] = self.panel.alive and stack.http_ok(f"{self.panel.url}/api/health")
        return checks

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, bool]:
        """Every health check, polled until all pass or ``timeout`` passes (a busy machine answers slowly)."""
        deadline = time.monotonic() + timeout
        while not all((checks := self.health()).values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        return checks

    def dead(self) -> str | None:
        """The name of a part that has stopped on its own, if any."""
        for child in [*self.workers, *([self.panel] if self.panel else [])]:
            if not child.alive:
                return child.name
        if self.owns_server and self.server and not prefect_server.pid_alive(self.server.pid):
            return "prefect server"
        return None

    def close(self) -> None:
        """Stop what this ``up`` started (panel, workers, then the server it started) and release the lock."""
        if self.panel:
            stack.stop(self.panel)
        for worker in self.workers:
            if self.server:
                stack.stop_worker(self.server.api_url, worker)
            else:
                stack.stop(worker)
        if self.owns_server:
            prefect_server.stop_server(self.settings)
        self.state_file.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
