"""Bearer-token auth on every mutating endpoint when ``REELFLOW_API_TOKEN`` is set."""

from __future__ import annotations

import secrets

from fastapi import Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelflow.errors import ApiError
from reelflow.settings import get_settings

bearer = HTTPBearer(auto_error=False, description="REELFLOW_API_TOKEN, required on writes when it is set.")


def configured_token() -> str | None:
    token = get_settings().api_token
    value = token.get_secret_value() if token is not None else ""
    return value or None


def require_token(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """Refuse a write without ``Authorization: Bearer <REELFLOW_API_TOKEN>`` (when a token is configured)."""
    expected = configured_token()
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), expected.encode()):
        message = "wrong bearer token" if given else "this endpoint needs 'Authorization: Bearer <REELFLOW_API_TOKEN>'"
        raise ApiError(401, message, "authorization", headers={"WWW-Authenticate": "Bearer"})
