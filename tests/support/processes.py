"""Processes seen through /proc: the command lines of a process's descendants (e.g. a server it spawned)."""

from __future__ import annotations

from pathlib import Path

from reelflow.orchestration import stack


def descendants(pid: int) -> list[str]:
    """The command lines of every live descendant of ``pid`` (found by reelflow's own process-tree walk)."""
    found = []
    for child in stack.descendants(pid):
        try:
            found.append((Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"))
        except OSError:
            continue  # it exited meanwhile
    return found


def prefect_servers(commands: list[str]) -> list[str]:
    """Those of ``commands`` that are a Prefect API server (Prefect's ephemeral one runs under uvicorn)."""
    return [c for c in commands if "uvicorn" in c or "prefect.server" in c or "prefect server" in c
            or "reelflow.orchestration.prefect_sqlite" in c]


def ephemeral_prefect_servers(reelflow_home: Path) -> list[int]:
    """Pids of Prefect's ephemeral API servers (uvicorn running ``prefect.server.api.server:create_app``) that a
    process of ``reelflow_home`` started and left behind, wherever they were reparented."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            cmdline = (environ.parent / "cmdline").read_bytes()
            if b"prefect.server.api.server:create_app" not in cmdline:
                continue
            variables = environ.read_bytes().split(b"\0")
        except OSError:
            continue
        if f"REELFLOW_HOME={reelflow_home}".encode() in variables:
            found.append(int(environ.parent.name))
    return found
