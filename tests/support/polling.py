"""Waiting for the state of another process or thread: poll what it observes, never sleep a guessed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T | None], timeout: float = 60, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy, and return that; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def when(condition: Callable[[], bool], action: Callable[[], None], timeout: float = 30.0) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition`` holds (e.g. restart the emulator mid-job)."""
    def body() -> None:
        wait_until(condition, timeout)
        action()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread
