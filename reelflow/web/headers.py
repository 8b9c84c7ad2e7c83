"""Security headers on every answer, and the Host allow-list that stops DNS rebinding."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelflow.settings import get_settings

LOCAL_HOSTS = ("127.0.0.1", "localhost")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# media-src/img-src allow https: for outputs on a CDN (R2 public URLs or presigned links).
PANEL_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; "
             "media-src 'self' blob: https:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
             "form-action 'self'; frame-ancestors 'none'")
# FastAPI's /docs and /redoc load their scripts from a CDN and start them inline.
DOCS_PATHS = ("/docs", "/redoc")
COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def allowed_hosts(bind_host: str | None) -> list[str]:
    """127.0.0.1, localhost, the address the server is bound to, and ``REELFLOW_ALLOWED_HOSTS``."""
    hosts = [*LOCAL_HOSTS, *get_settings().extra_hosts]
    if bind_host and bind_host not in WILDCARD_HOSTS and bind_host not in hosts:
        hosts.append(bind_host)
    return hosts


class SecurityHeaders:
    """``nosniff``, ``no-referrer``, no framing, and a strict Content-Security-Policy outside the API docs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(DOCS_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON.items():
                    headers[name] = value
                if not docs:
                    headers["content-security-policy"] = PANEL_CSP
            await send(message)

        await self.app(scope, receive, with_headers)
