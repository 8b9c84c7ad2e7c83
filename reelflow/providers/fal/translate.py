"""Credentials check and fal-client exceptions translated into reelflow's errors."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, NoReturn

import httpx

from reelflow.errors import FalRequestError, ModelUnavailableError, ProviderError, TransientProviderError

TRANSIENT_STATUS = frozenset({408, 409, 429})  # also the statuses at which fal queued nothing (safe to submit again)


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


def credentials_missing() -> str | None:
    """Why fal cannot be called with the environment's credentials, or None. No network."""
    if os.environ.get("FAL_KEY"):
        return None
    if os.environ.get("FAL_KEY_ID") and os.environ.get("FAL_KEY_SECRET"):
        return None
    return "no fal credentials: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET)"


def fal_module() -> ModuleType:
    """fal_client, imported on first use so callers can set its host variables before.

    Its own retry loop (``MAX_ATTEMPTS`` = 10 tries inside every request, on 408/409/429, ingress 502-504,
    transport errors and timeouts) is cut to one try: ``reelflow.providers.fal.queue.RetryPolicy`` is the only
    retry layer on fal calls.
    """
    import fal_client
    import fal_client.client

    fal_client.client.MAX_ATTEMPTS = 1
    return fal_client


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, fal_module().FalClientHTTPError):
        return exc.status_code in TRANSIENT_STATUS or exc.status_code >= 500
    return isinstance(exc, httpx.TransportError | TimeoutError)


def nothing_queued(exc: BaseException) -> bool:
    """A submit that provably created no job: the connection was refused, or fal answered 408/409/429."""
    if isinstance(exc, fal_module().FalClientHTTPError):
        return exc.status_code in TRANSIENT_STATUS
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, fal_module().FalClientHTTPError):
        return f"HTTP {exc.status_code}: {describe_detail(exc.message)}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def raise_translated(exc: Exception, what: str, endpoint: str, request_id: str | None = None) -> NoReturn:
    translated = _translate(exc, what, endpoint, request_id)
    if translated is exc:
        raise exc
    raise translated from exc


def _translate(exc: Exception, what: str, endpoint: str, request_id: str | None) -> Exception:
    from fal_client.auth import MissingCredentialsError

    fal = fal_module()
    if isinstance(exc, MissingCredentialsError):
        return ModelUnavailableError(endpoint, [str(exc)])
    if is_transient(exc):
        return TransientProviderError(f"fal {what} failed: {describe_exception(exc)}")
    if isinstance(exc, fal.FalClientHTTPError):
        message = f"fal {what} failed with {describe_exception(exc)}"
        return FalRequestError(message, status_code=exc.status_code, detail=exc.message,
                               request_id=request_id)
    if isinstance(exc, KeyError | ValueError):
        return ProviderError(f"fal {what}: unexpected answer ({describe_exception(exc)})")
    return exc
