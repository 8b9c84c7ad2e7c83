"""A per-run lock held by the process working on a run, so ``resume`` can tell a live run from a dead one.

A ``reelflow.core.filelock`` lock on ``$REELFLOW_HOME/run/locks/<run_id>.lock``: the kernel drops it when the
process dies, even by SIGKILL. Re-entrant within a process (resume holds it while the tasks take it again).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reelflow.core import filelock
from reelflow.errors import RunBusyError
from reelflow.settings import get_settings

_held: dict[str, tuple[filelock.FileLock, int]] = {}
_guard = threading.Lock()


def _path(run_id: str) -> Path:
    return get_settings().run_dir / "locks" / f"{run_id}.lock"


@contextmanager
def run_lock(run_id: str) -> Iterator[None]:
    """Hold the run's lock, or raise RunBusyError at once if another live process holds it."""
    with _guard:
        if run_id in _held:
            lock, depth = _held[run_id]
        else:
            path = _path(run_id)
            if (lock := filelock.try_acquire(path)) is None:
                raise RunBusyError(run_id, filelock.holder(path))
            depth = 0
        _held[run_id] = (lock, depth + 1)
    try:
        yield
    finally:
        with _guard:
            lock, depth = _held.pop(run_id)
            if depth > 1:
                _held[run_id] = (lock, depth - 1)
            else:
                lock.release(unlink=True)
