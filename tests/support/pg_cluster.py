"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks (initdb + pg_ctl, torn down after).

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user (Debian's
``postgresql`` package creates it) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reelflow.orchestration.prefect_server import free_port

DATABASE = "prefect"


def pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_owner(command: list[str], user: str | None) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", user, "--", *command] if user else command
    done = subprocess.run(full, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@contextmanager
def pg_cluster() -> Iterator[str]:
    """Yields a ``postgresql+asyncpg://`` URL of a fresh database; the cluster is stopped and deleted after."""
    binaries = pg_bin()
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="reelflow-pg-"))
    data = root / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    port = free_port(0, "a throwaway PostgreSQL cluster")
    started = False
    try:
        _as_owner([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], user)
        _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
                   "-o", f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off", "start"], user)
        started = True
        _as_owner([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE], user)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            _as_owner([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)
