"""Processes seen through /proc: the command lines of a process's descendants (e.g. a server it spawned)."""

from __future__ import annotations

from pathlib import Path


def descendants(pid: int) -> list[str]:
    """The command lines of every live descendant of ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(cmdline)
            found.extend(descendants(int(stat.parent.name)))
    return found


def prefect_servers(commands: list[str]) -> list[str]:
    """Those of ``commands`` that are a Prefect API server (Prefect's ephemeral one runs under uvicorn)."""
    return [c for c in commands if "uvicorn" in c or "prefect.server" in c or "prefect server" in c]


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
