"""Rendering a script's run in a detached child process, so that ``submit`` means submitted.

A script's ``reelflow.submit``/``submit_pipeline`` with no worker online would render in a thread of the script,
which dies with it (Prefect starts its services lazily, and an interpreter shutting down refuses them). Instead
``start`` spawns ``python -m reelflow.runs.render_child RUN_ID OWNER`` in a session of its own (stdio to
``$REELFLOW_HOME/logs/run-RUN_ID.log``, not killed when the script ends), and returns once the child has taken the
run's ownership in the store (the owner that reconcile and ``reelflow cancel`` go by). The child renders the run
and exits when it has ended; a cancel from any process reaches it through the store, like any other owner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reelflow.errors import ReelflowError
from reelflow.settings import get_settings
from reelflow.store import owners, repo

HANDSHAKE_S = 60.0
POLL_S = 0.05


def log_path(run_id: str) -> Path:
    return get_settings().home / "logs" / f"run-{run_id}.log"


def _child_env() -> dict[str, str]:
    """This process's environment (the Prefect server ``ensure_api`` chose, REELFLOW_*), with reelflow's own
    source root on the path: the flows and tasks packages sit beside it."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}


def start(run_id: str, *, force: bool = False, from_owner: str | None = None, resume: bool = False,
          handshake_s: float = HANDSHAKE_S) -> int:
    """Hand the recorded run (owned by this process, or by ``from_owner``, a process that is gone) to a detached
    child that renders it (``resume``: continues it, as ``reelflow pipeline resume`` does); returns the child's pid
    once it owns the run (or the run has already ended). Raises ``ReelflowError`` if the child exits or stalls
    before that."""
    log = log_path(run_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "reelflow.runs.render_child", run_id, from_owner or owners.me(),
               *(["--force"] if force else []), *(["--resume"] if resume else [])]
    with log.open("ab") as out:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=_child_env(), close_fds=True)
    taken = f"{owners.me().partition(':')[0]}:{child.pid}:"
    deadline = time.monotonic() + handshake_s
    while True:
        owner, status = owners.owner_of(run_id)
        if (owner or "").startswith(taken) or status in repo.FINISHED:
            return child.pid
        if child.poll() is not None:
            raise ReelflowError(f"the process rendering run {run_id} exited ({child.returncode}) before it took "
                                f"the run; see {log}")
        if time.monotonic() > deadline:
            child.kill()
            raise ReelflowError(f"the process rendering run {run_id} did not take the run within {handshake_s:g} s; "
                                f"see {log}")
        time.sleep(POLL_S)
