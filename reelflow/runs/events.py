"""Run events: written to the store (the panel streams them) and handed to in-process listeners (the CLI)."""

from __future__ import annotations

from typing import Any

from reelflow.core.listeners import Listeners
from reelflow.store import repo

_listeners: Listeners[[str, str, str, float | None]] = Listeners()
subscribe = _listeners.subscribe  # listener(run_id, kind, message, progress) for every event emitted in this process


def emit(run_id: str, kind: str, message: str = "", *, step: str | None = None, progress: float | None = None,
         data: dict[str, Any] | None = None) -> None:
    repo.add_event(run_id, kind, message, step=step, progress=progress, data=data)
    _listeners.notify(run_id, kind, message, progress)
