"""An exclusive ``flock`` on a file that names its holder: the kernel drops it when the holding process dies,
even by SIGKILL, so a lock left behind never needs cleaning up.

Used for the run lock (``reelflow.runs.lock``), ``reelflow up`` and the start of the local Prefect server.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class FileLock:
    """A held lock; ``release`` (or leaving the ``with`` block) gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self, *, unlink: bool = False) -> None:
        """Give the lock up; ``unlink`` first removes the file, for locks named after something short-lived."""
        if self._fd is None:
            return
        if unlink:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def acquire(path: Path) -> FileLock:
    """Lock ``path``, waiting while another process holds it (see ``try_acquire``)."""
    lock = _lock(path, fcntl.LOCK_EX)
    assert lock is not None
    return lock


def try_acquire(path: Path) -> FileLock | None:
    """Lock ``path`` (created with its folder if missing) and write this process's pid in it; None at once
    when another process holds it (``holder`` says which)."""
    return _lock(path, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _lock(path: Path, operation: int) -> FileLock | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the previous holder unlinked it between our open and flock: lock the new file
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return FileLock(path, fd)
        os.close(fd)


def holder(path: Path) -> str:
    """The pid the holder of ``path`` wrote, or "" when there is none to read."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""
