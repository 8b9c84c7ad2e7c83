"""Reading ComfyUI's websocket messages and history entries into progress events and outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from reelflow.errors import ComfyExecutionError, ComfyJobCancelledError, ProviderError

ProgressKind = Literal["queued", "started", "cached", "executing", "progress", "executed"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a prompt's life: queue position, node started, sampler step ``value``/``max``."""

    prompt_id: str
    kind: ProgressKind
    node: str | None = None
    value: int | None = None
    max: int | None = None
    queue_position: int | None = None

    @property
    def fraction(self) -> float | None:
        return self.value / self.max if self.value is not None and self.max else None


@dataclass(frozen=True)
class Signal:
    """What one websocket message means for the prompt being waited on."""

    events: tuple[ProgressEvent, ...] = ()
    finished: bool = False
    error: ProviderError | None = None


def execution_error(prompt_id: str, data: dict[str, Any]) -> ComfyExecutionError:
    return ComfyExecutionError(prompt_id, _opt_str(data.get("node_id")), data.get("node_type"),
                          data.get("exception_type"), data.get("exception_message"))


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _progress_state(prompt_id: str, data: dict[str, Any]) -> tuple[ProgressEvent, ...]:
    nodes = data.get("nodes") or {}
    return tuple(ProgressEvent(prompt_id, "progress", str(node_id), int(state.get("value", 0)),
                               int(state.get("max", 0)))
                 for node_id, state in nodes.items()
                 if isinstance(state, dict) and state.get("state") == "running")


def read_message(message: dict[str, Any], prompt_id: str) -> Signal | None:
    """The meaning of one text frame for ``prompt_id``, or None when it is about something else."""
    kind, data = message.get("type"), message.get("data")
    if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
        return None
    node = _opt_str(data.get("node"))
    if kind == "executing":
        if node is None:
            return Signal(finished=True)
        return Signal((ProgressEvent(prompt_id, "executing", node),))
    if kind == "progress":
        return Signal((ProgressEvent(prompt_id, "progress", node, int(data.get("value", 0)),
                                     int(data.get("max", 0))),))
    if kind == "progress_state":
        return Signal(_progress_state(prompt_id, data))
    if kind == "execution_start":
        return Signal((ProgressEvent(prompt_id, "started"),))
    if kind == "execution_cached":
        return Signal((ProgressEvent(prompt_id, "cached", value=len(data.get("nodes") or [])),))
    if kind == "executed":
        return Signal((ProgressEvent(prompt_id, "executed", node),))
    if kind == "execution_error":
        return Signal(error=execution_error(prompt_id, data))
    if kind == "execution_interrupted":
        return Signal(error=ComfyJobCancelledError(prompt_id, f"interrupted at node {data.get('node_id')}"))
    return None


def check_history(entry: dict[str, Any], prompt_id: str) -> None:
    """Raise the prompt's failure if its history entry records one."""
    status = entry.get("status") or {}
    if status.get("status_str") != "error":
        return
    for kind, data in reversed(status.get("messages") or []):
        if kind == "execution_error":
            raise execution_error(prompt_id, data)
        if kind == "execution_interrupted":
            raise ComfyJobCancelledError(prompt_id, f"interrupted at node {data.get('node_id')}")
    raise ProviderError(f"ComfyUI prompt {prompt_id} ended with status 'error' and no error message")
