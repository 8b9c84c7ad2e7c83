"""Run events: written to the store (the panel streams them) and handed to in-process listeners (the CLI)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from reelflow.store import repo

Listener = Callable[[str, str, str, float | None], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener(run_id, kind, message, progress)`` for every event emitted in this process."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def emit(run_id: str, kind: str, message: str = "", *, step: str | None = None, progress: float | None = None,
         data: dict[str, Any] | None = None) -> None:
    repo.add_event(run_id, kind, message, step=step, progress=progress, data=data)
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(run_id, kind, message, progress)
