"""ComfyUI progress events -> one 0..1 fraction and a message, into the store's events and the Prefect artifact."""

from __future__ import annotations

from typing import Any

from reelflow.jobs.step_protocol import Step
from reelflow.providers.comfyui import ProgressEvent

START, SPAN = 0.05, 0.9


def _sampler_nodes(graph: dict[str, Any]) -> set[str]:
    return {node_id for node_id, node in graph.items()
            if "Sampler" in str(node.get("class_type")) and "Select" not in str(node.get("class_type"))}


class ComfyProgress:
    """Callable for ``ComfyClient.wait``: sampler steps drive the fraction, every node names the message."""

    def __init__(self, step: Step, graph: dict[str, Any]) -> None:
        self.step = step
        self.graph = graph
        self.expected = _sampler_nodes(graph)
        self.done: dict[str, float] = {}
        self.fraction = 0.0

    def _class(self, node: str | None) -> str:
        return str((self.graph.get(node or "") or {}).get("class_type") or "?")

    async def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "queued":
            await self.step.progress(self.fraction, f"queued on ComfyUI at position {event.queue_position}")
        elif event.kind == "started":
            await self.step.progress(max(self.fraction, 0.02), "running on the GPU")
        elif event.kind == "executing":
            await self.step.progress(self.fraction, f"node {event.node} ({self._class(event.node)})")
        elif event.kind == "progress" and event.node is not None and event.fraction is not None:
            self.expected.add(event.node)
            self.done[event.node] = event.fraction
            share = sum(self.done.values()) / len(self.expected)
            self.fraction = max(self.fraction, START + SPAN * share)
            await self.step.progress(self.fraction, f"node {event.node} ({self._class(event.node)}) step "
                                     f"{event.value}/{event.max}")
