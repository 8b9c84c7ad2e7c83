"""Typed progress updates for one fal request, derived from successive status polls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LogLine:
    message: str
    level: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True)
class Queued:
    position: int


@dataclass(frozen=True)
class InProgress:
    new_logs: tuple[LogLine, ...] = ()


@dataclass(frozen=True)
class Completed:
    new_logs: tuple[LogLine, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


FalUpdate = Queued | InProgress | Completed


def _log_line(item: Any) -> LogLine:
    if isinstance(item, dict):
        return LogLine(str(item.get("message", "")), item.get("level"), item.get("timestamp"))
    return LogLine(str(item))


class UpdateTracker:
    """Turns raw statuses into updates: a queue position only when it changes, logs only once each."""

    def __init__(self) -> None:
        self.seen_logs = 0
        self.last: FalUpdate | None = None

    def _new_logs(self, logs: list[Any] | None) -> tuple[LogLine, ...]:
        logs = logs or []
        if len(logs) < self.seen_logs:
            self.seen_logs = 0
        new = tuple(_log_line(item) for item in logs[self.seen_logs:])
        self.seen_logs = len(logs)
        return new

    def feed(self, kind: str, *, position: int = 0, logs: list[Any] | None = None,
             metrics: dict[str, Any] | None = None, error: str | None = None) -> FalUpdate | None:
        update: FalUpdate
        if kind == "queued":
            update = Queued(position)
            if update == self.last:
                return None
        elif kind == "in_progress":
            update = InProgress(self._new_logs(logs))
            if not update.new_logs and isinstance(self.last, InProgress):
                return None
        else:
            update = Completed(self._new_logs(logs), dict(metrics or {}), error)
        self.last = update
        return update
