"""fal-specific failures, each a subclass of the project's own error classes."""

from __future__ import annotations

from typing import Any

from reelflow.errors import ProviderError


def describe_detail(detail: Any) -> str:
    """fal's ``detail`` (a string, or a list of ``{loc, msg, type}``) as one line of text."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            loc = ".".join(str(p) for p in item.get("loc") or [])
            text = f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", item))
            parts.append(f"{text} ({item['type']})" if item.get("type") else text)
        return "; ".join(parts) or "no detail"
    return str(detail) if detail not in (None, "") else "no detail"


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
