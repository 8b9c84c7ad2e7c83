"""Every exception reelflow raises on purpose, in one hierarchy, caught by meaning.

Our exception hierarchy:

* ReelflowError
  x SpecError (also a ValueError)
    - ImageTooLargeError
    - PipelineDefinitionError
  x ModelUnavailableError
  x RunNotFoundError (also a LookupError)
  x AmbiguousRunIdError (also a LookupError)
  x PipelineNotFoundError (also a LookupError)
  x RunBusyError
  x RunNotResumableError
  x AlreadyUpError
  x StoreSchemaError
  x SlotLimitMissingError
  x WorkflowError
  x ProviderError
    + TransientProviderError
      - VastTransientError
      - ComfyUnreachableError
      - ComfyBusyError
      - ComfySubmitUncertainError
      - SwarmSocketLostError
      - GpuUnreachableError
      - TransientSourceError (also a SourceError)
    + FalRequestError
    + FalDeadlineError
    + FalSubmitUncertainError
    + VastApiError
    + ComfyProvisioningError
      - ComfyMissingModelsError
      - ComfyMissingNodesError
    + ComfyPromptRejectedError
    + ComfyExecutionError
    + ProviderCancelledError
      - ComfyJobCancelledError
    + ComfyJobLostError
    + ComfyDeadlineError
    + ComfyNoVideoOutputError
  x StorageError
    + SourceError
      - TransientSourceError (also a TransientProviderError)
    + HashNeededError
* ApiError
* RenderCancelledError
* BodyTooLargeError (a BaseException)

"Transient" is said one way: a failure that a later try may fix is a ``TransientProviderError``, so
``except ProviderError`` catches it too; retries test ``isinstance(exc, TransientProviderError)``.

Imports nothing of reelflow, so every layer (providers included) may raise these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ReelflowError(Exception):
    """Base class for every error reelflow raises on purpose."""


class SpecError(ReelflowError, ValueError):
    """Bad input: names the field, what was wrong and what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ImageTooLargeError(SpecError):
    """An input image with more pixels than reelflow will decode."""


class PipelineDefinitionError(SpecError):
    """A pipeline definition (or the inputs given to it) that cannot run: names the step (None for the pipeline
    itself or its inputs), the field, what was wrong and what is allowed."""

    def __init__(self, step: str | None, field: str, message: str) -> None:
        super().__init__(f"steps.{step}.{field}" if step else field, message)
        self.step = step
        self.step_field = field


class ModelUnavailableError(ReelflowError):
    """The model exists but cannot run here: its backend is not built or not configured."""

    def __init__(self, model_id: str, missing: list[str]) -> None:
        super().__init__(f"model '{model_id}' is not available: " + "; ".join(missing))
        self.model_id = model_id
        self.missing = missing


class RunNotFoundError(ReelflowError, LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id '{run_id}'")
        self.run_id = run_id


class AmbiguousRunIdError(ReelflowError, LookupError):
    """A run id prefix that matches more than one run; ``matches`` lists them (newest first)."""

    def __init__(self, prefix: str, matches: list[str]) -> None:
        listed = ", ".join(matches)
        super().__init__(f"run id '{prefix}' is ambiguous: it starts {len(matches)} runs ({listed}); give more of it")
        self.prefix = prefix
        self.matches = matches


class PipelineNotFoundError(ReelflowError, LookupError):
    def __init__(self, pipeline_id: str) -> None:
        super().__init__(f"no pipeline with id '{pipeline_id}'")
        self.pipeline_id = pipeline_id


class RunBusyError(ReelflowError):
    """Another live process is working on this run."""

    def __init__(self, run_id: str, pid: str) -> None:
        super().__init__(f"run {run_id} is being worked on by another live process (pid {pid or '?'}); "
                         "wait for it, or cancel it, instead of resuming")
        self.run_id = run_id
        self.pid = pid


class RunNotResumableError(ReelflowError):
    """The run ended in a way that resuming cannot change (it was cancelled)."""


class StoreSchemaError(ReelflowError):
    """A store this reelflow cannot use or upgrade (e.g. written by a newer reelflow); nothing was changed."""

    def __init__(self, store: str, message: str) -> None:
        super().__init__(f"the store {store}: {message}")
        self.store = store


class AlreadyUpError(ReelflowError):
    """``reelflow up`` already runs for this REELFLOW_HOME; ``state`` is what it recorded."""

    def __init__(self, state: dict[str, Any]) -> None:
        where = ", ".join(f"{k} {v}" for k, v in (("Prefect UI", state.get("prefect_ui")),
                                                  ("panel", state.get("panel"))) if v)
        super().__init__(f"reelflow up is already running (pid {state.get('pid', '?')})" + (f": {where}" if where
                                                                                            else ""))
        self.state = state


class SlotLimitMissingError(ReelflowError):
    """The Prefect concurrency limit does not exist, so nothing would be limited."""


class WorkflowError(ReelflowError):
    """A workflow template or custom workflow file is unusable as given."""


class ProviderError(ReelflowError):
    """A provider call failed for this job; not retryable as-is unless it is a ``TransientProviderError``."""


class TransientProviderError(ProviderError):
    """A provider call failed in a way that a later try may fix (429, 5xx, connection)."""


class FalRequestError(ProviderError):
    """fal refused a request or the model failed it; ``detail`` keeps fal's field-level messages."""

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.request_id = request_id


class FalDeadlineError(ProviderError):
    """The request did not finish before our deadline; a cancel was sent (see ``cancel_note``)."""

    def __init__(self, endpoint: str, request_id: str, deadline_s: float, cancel_note: str) -> None:
        super().__init__(f"fal request {request_id} on {endpoint} did not finish within the "
                         f"{deadline_s:g} s deadline; {cancel_note}")
        self.endpoint = endpoint
        self.request_id = request_id
        self.deadline_s = deadline_s
        self.cancel_note = cancel_note


class FalSubmitUncertainError(ProviderError):
    """A submit was sent but its answer was lost: a paid job may exist. Never resubmit blindly."""


class VastApiError(ProviderError):
    """vast.ai refused a call in a way a retry will not fix (bad key, unknown instance, quota)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"vast.ai HTTP {status_code}: {message}")
        self.status_code = status_code


class DescribedModel(Protocol):
    """A model file a ComfyUI graph needs, as ``reelflow.providers.comfyui.graph.ModelRef`` is."""

    def describe(self) -> str: ...


class ComfyProvisioningError(ProviderError):
    """The server lacks model files or node classes this graph needs; retrying will not help."""

    def __init__(self, url: str, models: Sequence[DescribedModel] = (), node_classes: Sequence[str] = ()) -> None:
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


class ComfyMissingModelsError(ComfyProvisioningError):
    """Model files are not installed (or sit in the wrong folder)."""


class ComfyMissingNodesError(ComfyProvisioningError):
    """Node classes are not installed (``/object_info/{class}`` answered ``{}``)."""


class ComfyPromptRejectedError(ProviderError):
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


class ComfyExecutionError(ProviderError):
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


class ProviderCancelledError(ProviderError):
    """The provider stopped the job before it finished (someone interrupted it there): the run ends cancelled."""


class ComfyJobCancelledError(ProviderCancelledError):
    """The prompt was interrupted (``execution_interrupted``) or removed from the queue."""

    def __init__(self, prompt_id: str, detail: str = "interrupted") -> None:
        super().__init__(f"ComfyUI prompt {prompt_id} was cancelled: {detail}")
        self.prompt_id = prompt_id


class ComfyJobLostError(ProviderError):
    """Neither history nor queue knows the prompt and no output file exists: submit a new attempt."""

    def __init__(self, url: str, prompt_id: str) -> None:
        super().__init__(f"ComfyUI at {url} has lost prompt {prompt_id} (not in history or queue; "
                         "the server restarted or the job was deleted)")
        self.url = url
        self.prompt_id = prompt_id


class ComfyDeadlineError(ProviderError):
    """The wait passed its deadline; the prompt was interrupted."""

    def __init__(self, prompt_id: str, deadline_s: float) -> None:
        super().__init__(f"ComfyUI prompt {prompt_id} did not finish within {deadline_s:g} s; interrupted")
        self.prompt_id = prompt_id
        self.deadline_s = deadline_s


class ComfyNoVideoOutputError(ProviderError):
    """The prompt finished but no output node reported a video file."""


class VastTransientError(TransientProviderError):
    """429/502/503/504 or a transport failure; ``retry_after`` comes from the ``Retry-After`` header."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ComfyUnreachableError(TransientProviderError):
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


class ComfySubmitUncertainError(TransientProviderError):
    """POST /prompt got no clear answer; reconcile with ``wait(prompt_id)`` before submitting again."""

    def __init__(self, prompt_id: str, reason: str) -> None:
        super().__init__(f"submit of prompt {prompt_id} has an unknown outcome ({reason}); "
                         "call wait() with the same prompt_id to find out")
        self.prompt_id = prompt_id


class SwarmSocketLostError(TransientProviderError):
    """The websocket ended before an output arrived; the job may still be running on the server."""


class GpuUnreachableError(TransientProviderError):
    """The GPU endpoint did not answer before anything was submitted, so nothing was paid for.

    The one failure after which a pipeline may fall back to a cloud model.
    """


class StorageError(ReelflowError):
    """Writing to object storage failed; the message carries the S3 (or source) error text."""


class SourceError(StorageError):
    """Reading the source URL (a provider's output) failed; trying again will not help."""


class TransientSourceError(SourceError, TransientProviderError):
    """The source URL dropped or answered 408/425/429/5xx; trying again may help."""


class HashNeededError(StorageError):
    """A stream longer than ``concurrency * part_size`` came with neither its sha256 nor a run key: its content
    key is known only now that it has been read to the end, too late to upload it without a copy."""

    def __init__(self, sha256: str, limit: int) -> None:
        super().__init__(f"a stream longer than {limit // 2**20} MiB needs its sha256 (it is {sha256}) or a "
                         "run key before it is uploaded")
        self.sha256 = sha256


class ApiError(Exception):
    """An error the API answers with on purpose: HTTP status, a clear message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers
        self.extra = extra


class RenderCancelledError(Exception):
    """The offline motion render stopped because its cancel event was set."""


class BodyTooLargeError(BaseException):
    """Raised from ``receive``; a BaseException so that body parsers' ``except Exception`` let it through."""
