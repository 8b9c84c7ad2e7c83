"""A per-run lock held by the process working on a run, so ``resume`` can tell a live run from a dead one.

An ``flock`` on ``$REELFLOW_HOME/run/locks/<run_id>.lock``: the kernel drops it when the process
dies, even by SIGKILL. Re-entrant within a process (resume holds it while the tasks take it again).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reelflow.errors import ReelflowError
from reelflow.settings import get_settings

_held: dict[str, list[int]] = {}
_guard = threading.Lock()


class RunBusyError(ReelflowError):
    """Another live process is working on this run."""

    def __init__(self, run_id: str, pid: str) -> None:
        super().__init__(f"run {run_id} is being worked on by another live process (pid {pid or '?'}); "
                         "wait for it, or cancel it, instead of resuming")
        self.run_id = run_id
        self.pid = pid


def _path(run_id: str) -> Path:
    return get_settings().run_dir / "locks" / f"{run_id}.lock"


def _open_locked(run_id: str) -> int:
    path = _path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise RunBusyError(run_id, pid) from None
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the previous holder unlinked it between our open and flock: take the new file
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return fd
        os.close(fd)


@contextmanager
def run_lock(run_id: str) -> Iterator[None]:
    """Hold the run's lock, or raise RunBusyError at once if another live process holds it."""
    with _guard:
        if run_id in _held:
            _held[run_id][1] += 1
        else:
            _held[run_id] = [_open_locked(run_id), 1]
    try:
        yield
    finally:
        with _guard:
            entry = _held[run_id]
            entry[1] -= 1
            if entry[1] == 0:
                del _held[run_id]
                _path(run_id).unlink(missing_ok=True)
                os.close(entry[0])
