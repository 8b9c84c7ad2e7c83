"""Where Prefect runs: a server named by PREFECT_API_URL, or a local one reelflow starts once and reuses.

Prefect's ephemeral mode starts a server subprocess in every Python process (6-18 s each time), so
by default the CLI starts ``prefect server start`` in the background on first use, records it under
``$REELFLOW_HOME/run/``, and later commands reuse it (``reelflow server stop`` ends it). Everything
here must run before ``prefect`` is imported, because Prefect reads these variables at import.

That server is private: it requires ``PREFECT_API_AUTH_STRING`` (``server_secrets.auth_string``) from every client,
answers cross-origin requests only from its own UI, and keeps the Block encryption key outside its database.
"""

from __future__ import annotations

import contextlib
import json
import logging
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
from reelflow.orchestration import server_secrets
from reelflow.settings import Settings, get_settings, prefect_api_url, use_prefect_api

STARTUP_TIMEOUT_S = 90.0
BUSY_SERVER_PATIENCE_S = 30.0
log = logging.getLogger("reelflow.orchestration")
AUTH_VARIABLE = "PREFECT_API_AUTH_STRING"
KEY_VARIABLE = "PREFECT_SERVER_ENCRYPTION_KEY"
QUIET_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


SQLITE_SERVER_DEFAULTS = {
    # Every Prefect event (each state change, heartbeat, artifact and lease) would be one more row to write under
    # the database's single write lock; reelflow reads none of them (it keeps its own run events). The Prefect
    # UI's event feed stays empty; flow runs, task runs, logs and artifacts are recorded as before.
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
}
"""What the background server gets on SQLite (a variable already set wins); PostgreSQL keeps Prefect's defaults."""


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
    if Path(os.environ.get("PREFECT_HOME", "")) == settings.prefect_home and settings.prefect_mode != "server":
        # An ephemeral Prefect server started on this database must read its Blocks with the same key.
        os.environ.setdefault(KEY_VARIABLE, server_secrets.encryption_key(settings))
    for name, value in QUIET_DEFAULTS.items():
        os.environ.setdefault(name, value)


def ensure_api(settings: Settings | None = None) -> str | None:
    """Make sure flows have a Prefect API to talk to; returns its URL (None in ephemeral mode)."""
    settings = settings or get_settings()
    prepare_environment(settings)
    if (api_url := prefect_api_url()) is not None:
        recorded = recorded_server(settings)
        if recorded is not None and recorded.api_url == api_url.rstrip("/"):
            os.environ.setdefault(AUTH_VARIABLE, server_secrets.auth_string(settings))
        return api_url
    if settings.prefect_mode == "ephemeral":
        return None
    if settings.prefect_mode == "server":
        raise ReelflowError("REELFLOW_PREFECT_MODE=server needs PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")
    server = running_server(settings) or start_server(settings)
    return server.api_url


def use_local_server(server: LocalServer, settings: Settings | None = None) -> None:
    """Point this process (and every process it starts) at ``server``, with the auth string it requires."""
    use_prefect_api(server.api_url)
    os.environ[AUTH_VARIABLE] = server_secrets.auth_string(settings or get_settings())


def api_headers() -> dict[str, str]:
    """Headers for a plain HTTP call to the Prefect API this process uses (its auth string, if any)."""
    value = os.environ.get(AUTH_VARIABLE)
    return server_secrets.basic_authorization(value) if value else {}


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
    """The recorded server when it is alive and healthy; this process then uses it (``use_local_server``)."""
    settings = settings or get_settings()
    server = recorded_server(settings)
    if server is None or not pid_alive(server.pid) or not _healthy_soon(server):
        return None
    use_local_server(server, settings)
    return server


def _healthy_soon(server: LocalServer) -> bool:
    """Whether the live recorded server answers within ``BUSY_SERVER_PATIENCE_S``: a server slow to answer on a
    loaded machine is waited for, never replaced by a second one on the same database."""
    deadline = time.monotonic() + BUSY_SERVER_PATIENCE_S
    while not healthy(server.api_url):
        if time.monotonic() >= deadline or not pid_alive(server.pid):
            return False
        time.sleep(0.5)
    return True


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
    """``preferred`` if nothing listens on it on 127.0.0.1, else any free port.

    ``SO_REUSEADDR`` as the servers themselves bind: a port whose last server was killed a moment ago (its
    connections in TIME_WAIT) counts as free, so a restarted server gets the port its clients remember.
    """
    for port in (preferred, 0):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
        if port is None:
            crashed = recorded_server(settings)  # clients started by a server that died remember its port
            port = int(crashed.url.rsplit(":", 1)[1]) if crashed else settings.prefect_port
        port = free_port(port, "the Prefect server")
        url = f"http://127.0.0.1:{port}"
        auth = server_secrets.auth_string(settings)
        env = {**os.environ, "PREFECT_HOME": str(settings.prefect_home), "PREFECT_SERVER_API_HOST": "127.0.0.1",
               "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_API_URL": f"{url}/api",
               "PREFECT_SERVER_API_AUTH_STRING": auth, AUTH_VARIABLE: auth,
               "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": f"{url},http://localhost:{port}",
               KEY_VARIABLE: server_secrets.encryption_key(settings, database_url)}
        env.pop("PREFECT_API_URL", None)
        if database_url:
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
        else:
            env = {**SQLITE_SERVER_DEFAULTS, **env}
        log = (settings.run_dir / "prefect-server.log").open("ab")
        starter = prefect_command() if database_url else [sys.executable, "-m", "reelflow.orchestration.prefect_sqlite"]
        process = subprocess.Popen(
            [*starter, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
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
        use_local_server(server, settings)
        if "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE" not in env:
            _free_leaked_slots(server.api_url)
        return server


def _free_leaked_slots(api_url: str) -> None:
    """Set every concurrency limit's taken slots to 0 on a server that has just started.

    Prefect keeps leases in the server's memory by default: the slots of the leases a killed server held stay
    counted in its database with no lease left for the repossessor to expire, so the limit would stay full for
    good. Holders still running from before the restart may briefly exceed the limit by what they held.
    """
    headers = api_headers()
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:  # the API may answer 503 for a moment after /health does
        try:
            answer = httpx.post(f"{api_url}/v2/concurrency_limits/filter", json={}, headers=headers, timeout=10)
            answer.raise_for_status()
            for limit in answer.json():
                if limit["active_slots"]:
                    httpx.patch(f"{api_url}/v2/concurrency_limits/{limit['id']}", json={"active_slots": 0},
                                headers=headers, timeout=10).raise_for_status()
            return
        except httpx.HTTPError as exc:
            log.warning("freeing the concurrency slots of a killed server's leases: %s; trying again", exc)
            time.sleep(0.5)


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


def connect_hints(server: LocalServer, settings: Settings | None = None) -> list[str]:
    """How a person reaches ``server``: its UI (which asks for the auth string) and the variables other shells need."""
    secret = server_secrets.secrets_dir(settings or get_settings()) / server_secrets.AUTH_FILE
    return [f"Prefect UI:  {server.url}  (log in with the contents of {secret})",
            f"Prefect API: {server.api_url}",
            f"in other shells: export PREFECT_API_URL={server.api_url} {AUTH_VARIABLE}=\"$(cat {secret})\""]


def ui_base_url(settings: Settings | None = None) -> str | None:
    """Where the Prefect UI is: ``PREFECT_UI_URL``, else the server of ``PREFECT_API_URL``, else the one
    this REELFLOW_HOME started (while its process lives)."""
    if found := os.environ.get("PREFECT_UI_URL") or prefect_api_url():
        return found.rstrip("/").removesuffix("/api")
    server = recorded_server(settings)
    return server.url if server is not None and pid_alive(server.pid) else None


def ui_url(flow_run_id: str | None) -> str | None:
    """Link to a flow run in the Prefect UI (see ``ui_base_url``)."""
    base = ui_base_url() if flow_run_id else None
    return f"{base}/runs/flow-run/{flow_run_id}" if base else None
