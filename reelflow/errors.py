"""One small exception hierarchy, caught by meaning."""

from __future__ import annotations


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


class ModelUnavailableError(ReelflowError):
    """The model exists but cannot run here: its backend is not built or not configured."""

    def __init__(self, model_id: str, missing: list[str]) -> None:
        super().__init__(f"model '{model_id}' is not available: " + "; ".join(missing))
        self.model_id = model_id
        self.missing = missing


class ProviderError(ReelflowError):
    """A provider answered with a failure for this job (not retryable as-is)."""


class TransientProviderError(ReelflowError):
    """A provider call failed in a way that a later try may fix (429, 5xx, connection)."""


class RunNotFoundError(ReelflowError, LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id '{run_id}'")
        self.run_id = run_id
