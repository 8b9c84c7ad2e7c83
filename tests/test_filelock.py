"""The flock helper: a lock another process holds is refused and names that process, and the kernel drops it
when that process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from reelflow.core import filelock

HOLD = ("import sys; from pathlib import Path; from reelflow.core import filelock; "
        "lock = filelock.acquire(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()")


def test_a_lock_held_elsewhere_is_refused_until_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "run.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        assert filelock.try_acquire(path) is None
        assert filelock.holder(path) == str(holder.pid)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    lock = filelock.try_acquire(path)
    assert lock is not None and filelock.holder(path) == str(os.getpid())
    lock.release(unlink=True)
    assert not path.exists()


def test_a_released_lock_can_be_taken_again(tmp_path: Path) -> None:
    path = tmp_path / "up.lock"
    with filelock.acquire(path):
        assert filelock.try_acquire(path) is None, "a second open file description is refused, even here"
    again = filelock.try_acquire(path)
    assert again is not None
    again.release()
    again.release()
