"""``/api/session``: the panel trades the login URL's token for an HttpOnly session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from reelflow.core.api_token import auth_enabled
from reelflow.errors import ApiError
from reelflow.web.auth import SESSION_COOKIE, authenticated, configured_token, session_value, token_matches

router = APIRouter(prefix="/api/session", tags=["auth"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    token: str = Field(min_length=1, max_length=512, description="The API token (from the login URL).")


class SessionOut(BaseModel):
    auth_required: bool
    authenticated: bool


@router.get("", response_model=SessionOut)
def session(request: Request) -> SessionOut:
    """Whether this request carries a valid token or session cookie (the panel asks before offering a login)."""
    return SessionOut(auth_required=auth_enabled(), authenticated=authenticated(request))


@router.post("", status_code=204, response_class=Response,
             responses={401: {"description": "Wrong token"}, 204: {"description": "Logged in: cookie set"}})
def login(body: Login, request: Request) -> Response:
    """Set the ``HttpOnly; SameSite=Strict`` session cookie that the panel's requests carry."""
    token = configured_token()
    response = Response(status_code=204)
    if token is None:
        return response
    if not token_matches(body.token, token):
        raise ApiError(401, "wrong token; use the login URL `reelflow serve` printed, or the contents of "
                       "$REELFLOW_HOME/api-token", "token")
    response.set_cookie(SESSION_COOKIE, session_value(token), httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.delete("", status_code=204, response_class=Response)
def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
