"""Where Prefect runs: a server named by PREFECT_API_URL, or a local one reelflow starts once and reuses.

Prefect's ephemeral mode starts a server subprocess in every Python process (6-18 s each time), so
by default the CLI starts ``prefect server start`` in the background on first use, records it under
``$REELFLOW_HOME/run/``, and later commands reuse it (``reelflow server stop`` ends it). Everything
here must run before ``prefect`` is imported, because Prefect reads these variables at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelflow.core import filelock
from reelflow.errors import ReelflowError
from reelflow.settings import Settings, get_settings, prefect_api_url, use_prefect_api

STARTUP_TIMEOUT_S = 90.0
QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


@dataclass(frozen=True)
class LocalServer:
    pid: int
    url: str

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def prepare_environment(settings: Settings | None = None) -> None:
    """Put Prefect's home inside REELFLOW_HOME unless the user chose PREFECT_HOME or a server."""
    settings = settings or get_settings()
    if "PREFECT_HOME" not in os.environ and prefect_api_url() is None:
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)


def ensure_api(settings: Settings | None = None) -> str | None:
    """Make sure flows have a Prefect API to talk to; returns its URL (None in ephemeral mode)."""
    settings = settings or get_settings()
    prepare_environment(settings)
    if (api_url := prefect_api_url()) is not None:
        return api_url
    if settings.prefect_mode == "ephemeral":
        return None
    if settings.prefect_mode == "server":
        raise ReelflowError("REELFLOW_PREFECT_MODE=server needs PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    server = running_server(settings) or start_server(settings)
    use_prefect_api(server.api_url)
    return server.api_url


def _state_file(settings: Settings) -> Path:
    return settings.run_dir / "prefect-server.json"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def recorded_server(settings: Settings | None = None) -> LocalServer | None:
    """The server this REELFLOW_HOME started, as recorded (alive or not, healthy or not)."""
    settings = settings or get_settings()
    try:
        state = json.loads(_state_file(settings).read_text())
        return LocalServer(pid=int(state["pid"]), url=str(state["url"]))
    except (OSError, ValueError, KeyError):
        return None


def running_server(settings: Settings | None = None) -> LocalServer | None:
    server = recorded_server(settings)
    return server if server is not None and pid_alive(server.pid) and healthy(server.api_url) else None


def pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port(preferred: int, purpose: str) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise ReelflowError(f"no free TCP port for {purpose}")


def prefect_command() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [shutil.which("prefect") or "prefect"]


def start_server(settings: Settings | None = None, port: int | None = None,
                 database_url: str | None = None) -> LocalServer:
    """Start ``prefect server start`` in the background (once, even if two commands race) and wait for health.

    ``database_url`` (e.g. ``postgresql+asyncpg://user:pw@host/db``) replaces the SQLite file in Prefect's home.
    """
    settings = settings or get_settings()
    with filelock.acquire(settings.run_dir / "prefect-server.lock"):
        already = running_server(settings)
        if already:
            return already
        port = free_port(settings.prefect_port if port is None else port, "the Prefect server")
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PREFECT_HOME": str(settings.prefect_home), "PREFECT_SERVER_API_HOST": "127.0.0.1",
               "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_API_URL": f"{url}/api"}
        env.pop("PREFECT_API_URL", None)
        if database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
        log = (settings.run_dir / "prefect-server.log").open("ab")
        process = subprocess.Popen(
            [*prefect_command(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
        server = LocalServer(pid=process.pid, url=url)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not healthy(server.api_url, timeout=1.0):
            if process.poll() is not None:
                raise ReelflowError(f"the Prefect server exited during start-up; see {log.name}")
            if time.monotonic() > deadline:
                process.terminate()
                raise ReelflowError(f"the Prefect server was not healthy after {STARTUP_TIMEOUT_S:.0f} s; "
                                    f"see {log.name}")
            time.sleep(0.2)
        _state_file(settings).write_text(json.dumps({"pid": process.pid, "url": url}))
        return server


def stop_server(settings: Settings | None = None, timeout_s: float = 20.0) -> bool:
    settings = settings or get_settings()
    server = recorded_server(settings)
    _state_file(settings).unlink(missing_ok=True)
    if server is None or not pid_alive(server.pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    return True


def ui_url(flow_run_id: str | None) -> str | None:
    """Link to a flow run in the Prefect UI, when the API is a local or known server."""
    api = os.environ.get("PREFECT_UI_URL") or prefect_api_url()
    if not api or not flow_run_id:
        return None
    return f"{api.removesuffix('/api')}/runs/flow-run/{flow_run_id}"
