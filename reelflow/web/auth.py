"""Who may use the API: the bearer token, or the panel's session cookie plus a header a cross-site form cannot send.

Every ``/api`` route except ``/api/health`` and ``/api/session`` depends on :func:`require_auth`, reads
included: a run's outputs, stored media and the vast.ai account are not for whoever can reach the port.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelflow.core.api_token import auth_enabled, read_api_token
from reelflow.errors import ApiError

log = logging.getLogger("reelflow.web")

SESSION_COOKIE = "reelflow_session"
CSRF_HEADER = "X-Reelflow-Request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
bearer = HTTPBearer(auto_error=False, description="The API token ($REELFLOW_HOME/api-token or REELFLOW_API_TOKEN).")


def configured_token() -> str | None:
    """The token requests must prove, or None when auth is switched off."""
    if not auth_enabled():
        return None
    token = read_api_token()
    if token is None:
        raise ApiError(503, "the server has no API token yet; start it with `reelflow serve` or `reelflow up`")
    return token


def session_value(token: str) -> str:
    """The cookie's value: derived from the token, so the cookie never carries the token itself."""
    return hmac.new(token.encode(), b"reelflow-panel-session", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return secrets.compare_digest(given.encode(), token.encode())


async def require_auth(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
    """Accept ``Authorization: Bearer <token>``, or the session cookie (plus ``X-Reelflow-Request`` on writes). A
    coroutine: FastAPI would run a plain function in a worker thread, a hop that cost more than the check itself."""
    check_auth(request, credentials)


def check_auth(request: Request, credentials: HTTPAuthorizationCredentials | None) -> None:
    token = configured_token()
    if token is None:
        return
    if credentials is not None:
        if token_matches(credentials.credentials, token):
            return
        raise ApiError(401, "wrong bearer token", "authorization", headers={"WWW-Authenticate": "Bearer"})
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if cookie and token_matches(cookie, session_value(token)):
        if request.method in SAFE_METHODS or request.headers.get(CSRF_HEADER):
            return
        raise ApiError(403, f"a change made with the session cookie needs the header '{CSRF_HEADER}: 1' "
                       "(or use 'Authorization: Bearer <token>')", CSRF_HEADER.lower())
    raise ApiError(401, "this endpoint needs 'Authorization: Bearer <token>' (the token is in "
                   "$REELFLOW_HOME/api-token) or the panel's session (open the login URL `reelflow serve` "
                   "printed)", "authorization", headers={"WWW-Authenticate": "Bearer"})


def authenticated(request: Request) -> bool:
    """Whether a read with this request's credentials would be let in."""
    try:
        check_auth(request, _bearer_of(request))
    except ApiError:
        return False
    return True


def _bearer_of(request: Request) -> HTTPAuthorizationCredentials | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=value) if scheme.lower() == "bearer" else None


require_token = require_auth  # the name route modules use on their write endpoints


def warn_if_open() -> None:
    if not auth_enabled():
        log.warning("REELFLOW_API_AUTH=off: the REST API answers ANYONE who can reach it, with no token: they can "
                    "read every run, start paid renders and change the GPU settings")
