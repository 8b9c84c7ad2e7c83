"""``reelflow up``: the whole local stack in one process group, one ``up`` per REELFLOW_HOME at a time.

Prefect server (SQLite in REELFLOW_HOME, or PostgreSQL), ``reelflow setup``, process worker(s) and the
REST API + panel when this version has one; every part is health-checked before the next starts. While it runs,
``supervise`` restarts a part that died (with backoff) on the port it had, and ``close`` stops everything in at
most ``STOP_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reelflow.core import filelock
from reelflow.core.api_token import auth_enabled, ensure_api_token, login_url
from reelflow.errors import AlreadyUpError, ReelflowError
from reelflow.orchestration import prefect_server, stack
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.orchestration.prefect_server import LocalServer, free_port
from reelflow.settings import Settings

STOP_TIMEOUT_S = 3.0
BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STEADY_S = 60.0  # a part alive this long after a restart starts its backoff from the beginning again


@dataclass
class Restarts:
    """How often a part was restarted lately, and when it may be restarted next."""

    count: int = 0
    last: float = 0.0

    def due(self, now: float) -> bool:
        if self.count and now - self.last > STEADY_S + BACKOFF_S[-1]:
            self.count = 0
        return self.count == 0 or now - self.last >= BACKOFF_S[min(self.count - 1, len(BACKOFF_S) - 1)]

    def note(self, now: float) -> None:
        self.count, self.last = self.count + 1, now


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
    restarts: dict[str, Restarts] = field(default_factory=dict)
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
            worker = self._start_worker(number)
            stack.wait_for(lambda w=worker: stack.worker_online(api_url, w.worker_name or ""), "worker", child=worker)
        self.say(f"  {len(self.workers)} worker(s) online in pool '{WORK_POOL}'")
        self._start_panel()
        return self.write_state()

    def write_state(self) -> dict[str, Any]:
        assert self.server is not None
        state = {"pid": os.getpid(), "prefect_ui": self.server.url, "prefect_api": self.server.api_url,
                 "panel": self.panel.url if self.panel else None, "server_pid": self.server.pid,
                 "workers": [w.worker_name for w in self.workers], "worker_pids": [w.process.pid for w in self.workers],
                 "panel_pid": self.panel.process.pid if self.panel else None}
        self.state_file.write_text(json.dumps(state))
        return state

    def _start_worker(self, number: int) -> stack.Child:
        assert self.server is not None
        worker = stack.start_worker(self.server.api_url, self.settings.run_dir / f"worker-{number + 1}.log",
                                    limit=self.options.worker_limit)
        if number < len(self.workers):
            self.workers[number] = worker
        else:
            self.workers.append(worker)
        return worker

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
        token = ensure_api_token() if auth_enabled() else None
        port = free_port(self.options.panel_port or self._recorded_panel_port(), "the panel")
        self.panel = stack.start_panel(self.server.api_url, port, self.settings.run_dir / "panel.log")
        stack.wait_for(lambda: stack.http_ok(f"{self.panel.url}/api/health"), "REST API + panel", child=self.panel)
        if token is not None:
            self.say(f"  log in to the panel: {login_url(self.panel.url, token)}")

    def _recorded_panel_port(self) -> int:
        """The panel's port in the state an earlier ``up`` of this REELFLOW_HOME left, else 0 (any)."""
        try:
            return int(json.loads(self.state_file.read_text())["panel"].rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
            return 0

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

    def dead(self) -> list[str]:
        """The parts that have stopped on their own."""
        found = [child.name for child in [*self.workers, *([self.panel] if self.panel else [])] if not child.alive]
        if self.owns_server and self.server and not prefect_server.pid_alive(self.server.pid):
            found.insert(0, "prefect server")
        return found

    def supervise(self) -> list[str]:
        """Restart each part that died, on the port it had, once its backoff allows; what was done, as messages.

        A part that does not come back is tried again later (1, 2, 4 ... 30 s apart), never a reason to stop the
        others: runs in flight keep their worker's flow-run processes, and the same ports keep their links valid.
        """
        done: list[str] = []
        now = time.monotonic()
        if self.owns_server and self.server and not prefect_server.pid_alive(self.server.pid):
            if self._due("prefect server", now):
                port = int(self.server.url.rsplit(":", 1)[1])
                try:
                    self.server = prefect_server.start_server(self.settings, port=port,
                                                              database_url=self.options.database_url)
                    done.append(f"prefect server died; restarted at {self.server.url}")
                except ReelflowError as exc:
                    done.append(f"prefect server died; restarting it failed ({exc}); trying again")
            return done  # the others need the server; their turn comes on the next pass
        for number, worker in enumerate(list(self.workers)):
            if not worker.alive and self._due(worker.name, now):
                assert self.server is not None
                stack.forget_worker(self.server.api_url, worker.worker_name or "")
                fresh = self._start_worker(number)
                self.restarts[fresh.name] = self.restarts.pop(worker.name)
                done.append(f"{worker.name} exited with {worker.process.returncode}; started {fresh.name}")
        if self.panel and not self.panel.alive and self._due("panel", now):
            assert self.server is not None
            port = int((self.panel.url or "").rsplit(":", 1)[1])
            code = self.panel.process.returncode
            self.panel = stack.start_panel(self.server.api_url, free_port(port, "the panel"),
                                           self.settings.run_dir / "panel.log")
            done.append(f"REST API + panel exited with {code}; restarted at {self.panel.url}")
        if done:
            self.write_state()
        return done

    def _due(self, name: str, now: float) -> bool:
        restarts = self.restarts.setdefault(name, Restarts())
        if not restarts.due(now):
            return False
        restarts.note(now)
        return True

    def close(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop what this ``up`` started, all at once (panel, workers, the server it started) within ``timeout``
        seconds, SIGKILL for whatever is left, and release the lock.

        The workers' flow-run processes are killed: their runs are taken over by the next ``up``, ``serve`` or
        worker (``reelflow.runs.reconcile``), a paid job polled by its stored id.
        """
        deadline = time.monotonic() + timeout
        children = [*([self.panel] if self.panel else []), *self.workers]
        flow_runs = [pid for w in self.workers for pid in stack.descendants(w.process.pid)]
        # SIGKILL, not SIGTERM: a flow run that receives SIGTERM treats it as a cancel and cancels its paid job,
        # while a killed one is resumed by its stored job id.
        stack.signal_groups(flow_runs, signal.SIGKILL)
        groups = [c.process.pid for c in children if c.alive] + flow_runs
        stack.signal_groups(groups, signal.SIGTERM)
        if self.server and not self.owns_server:  # a server that stays up must not offer runs to them
            for worker in self.workers:
                stack.forget_worker(self.server.api_url, worker.worker_name or "", timeout=0.5)
        if self.owns_server and self.server:
            groups.append(self.server.pid)
            stack.signal_groups([self.server.pid], signal.SIGTERM)
        stack.wait_gone(groups, deadline)
        stack.signal_groups(groups, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(0.5)
        if self.owns_server:
            prefect_server.stop_server(self.settings, timeout_s=0.5)
        self.state_file.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.release()
            self._lock = None
