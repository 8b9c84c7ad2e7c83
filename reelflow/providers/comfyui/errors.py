"""ComfyUI failures, each a subclass of reelflow's ProviderError (final) or TransientProviderError (retry)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelflow.errors import ProviderError, ReelflowError, TransientProviderError
from reelflow.providers.comfyui.graph import ModelRef


class WorkflowError(ReelflowError):
    """A workflow template or custom workflow file is unusable as given."""


class ComfyUnreachable(TransientProviderError):
    """No answer from the server (connection refused, DNS, TLS, tunnel gone)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"ComfyUI at {url} is unreachable: {reason}")
        self.url = url
        self.reason = reason


class ComfyBusyError(TransientProviderError):
    """A 5xx, a tunnel 524 or a connection broken mid-call: the call may or may not have taken effect."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SubmitOutcomeUnknown(TransientProviderError):
    """POST /prompt got no clear answer; reconcile with ``wait(prompt_id)`` before submitting again."""

    def __init__(self, prompt_id: str, reason: str) -> None:
        super().__init__(f"submit of prompt {prompt_id} has an unknown outcome ({reason}); "
                         "call wait() with the same prompt_id to find out")
        self.prompt_id = prompt_id


class ProvisioningError(ProviderError):
    """The server lacks model files or node classes this graph needs; retrying will not help."""

    def __init__(self, url: str, models: Sequence[ModelRef] = (), node_classes: Sequence[str] = ()) -> None:
        self.url = url
        self.models = list(models)
        self.node_classes = list(node_classes)
        parts = []
        if self.node_classes:
            parts.append("missing node classes (install the custom nodes): " + ", ".join(self.node_classes))
        if self.models:
            parts.append(f"missing {len(self.models)} model file(s) under models/: "
                         + "; ".join(ref.describe() for ref in self.models))
        super().__init__(f"ComfyUI at {url}: " + " | ".join(parts))


class MissingModelsError(ProvisioningError):
    """Model files are not installed (or sit in the wrong folder)."""


class MissingNodesError(ProvisioningError):
    """Node classes are not installed (``/object_info/{class}`` answered ``{}``)."""


class PromptRejectedError(ProviderError):
    """POST /prompt refused the graph (400), or accepted only part of it (200 with node_errors)."""

    def __init__(self, error_type: str, message: str, node_errors: dict[str, Any] | None = None) -> None:
        self.error_type = error_type
        self.node_errors = node_errors or {}
        details = "; ".join(_describe_node_error(node_id, entry)
                            for node_id, entry in self.node_errors.items())
        super().__init__(f"ComfyUI rejected the prompt: {error_type}: {message}"
                         + (f" [{details}]" if details else ""))


def _describe_node_error(node_id: str, entry: dict[str, Any]) -> str:
    errors = entry.get("errors") or []
    text = ", ".join(f"{e.get('type')}: {e.get('details') or e.get('message')}" for e in errors)
    return f"node {node_id} ({entry.get('class_type')}): {text}"


class ExecutionError(ProviderError):
    """A node raised while the prompt ran (``execution_error``)."""

    def __init__(self, prompt_id: str, node_id: str | None, node_type: str | None,
                 exception_type: str | None, exception_message: str | None) -> None:
        self.prompt_id = prompt_id
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type or ""
        self.exception_message = (exception_message or "").strip()
        super().__init__(f"ComfyUI prompt {prompt_id} failed in node {node_id} ({node_type}): "
                         f"{self.exception_type}: {self.exception_message}")

    @property
    def is_oom(self) -> bool:
        text = f"{self.exception_type} {self.exception_message}".lower()
        return "outofmemory" in text or "out of memory" in text or "allocation on device" in text


class JobCancelledError(ProviderError):
    """The prompt was interrupted (``execution_interrupted``) or removed from the queue."""

    def __init__(self, prompt_id: str, detail: str = "interrupted") -> None:
        super().__init__(f"ComfyUI prompt {prompt_id} was cancelled: {detail}")
        self.prompt_id = prompt_id


class JobLostError(ProviderError):
    """Neither history nor queue knows the prompt and no output file exists: submit a new attempt."""

    def __init__(self, url: str, prompt_id: str) -> None:
        super().__init__(f"ComfyUI at {url} has lost prompt {prompt_id} (not in history or queue; "
                         "the server restarted or the job was deleted)")
        self.url = url
        self.prompt_id = prompt_id


class DeadlineExceededError(ProviderError):
    """The wait passed its deadline; the prompt was interrupted."""

    def __init__(self, prompt_id: str, deadline_s: float) -> None:
        super().__init__(f"ComfyUI prompt {prompt_id} did not finish within {deadline_s:g} s; interrupted")
        self.prompt_id = prompt_id
        self.deadline_s = deadline_s


class NoVideoOutputError(ProviderError):
    """The prompt finished but no output node reported a video file."""
