"""Request body limits, enforced while the body streams in (before any parsing or spooling), and a deadline for
a body that stalls."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelflow.errors import BodyTooLargeError
from reelflow.settings import get_settings
from reelflow.web.errors import error_response

JSON_LIMIT = 1024 * 1024
FORM_OVERHEAD = 64 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # read (and drop) up to this much of a refused body so the client sees the 413
DRAIN_IDLE_S = 2.0


class BodyStalledError(BaseException):
    """The client stopped sending its body; a BaseException so that body parsers' ``except Exception`` let it
    through (as ``BodyTooLargeError``)."""


class BodyLimit:
    """413 for a body over the limit (uploads may carry REELFLOW_MAX_INPUT_BYTES, anything else 1 MiB), at once when
    ``Content-Length`` says so; 408 for a body that stalls for REELFLOW_BODY_TIMEOUT_S."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def limit_for(path: str) -> int:
        return get_settings().max_input_bytes + FORM_OVERHEAD if path.startswith("/api/uploads") else JSON_LIMIT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
            await self._reject(scope, receive, send, 413, f"the request body is over {limit} bytes")
            return
        timeout = get_settings().body_timeout_s
        received = 0
        started = complete = False

        async def counted_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in; from now on receive() only waits for a disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                raise BodyStalledError from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLargeError
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._reject(scope, receive, send, 413, f"the request body is over {limit} bytes",
                               drain=not complete)
        except BodyStalledError:
            if started:
                raise
            await self._reject(scope, receive, send, 408, f"the request body stalled for {timeout:g} s "
                               "(REELFLOW_BODY_TIMEOUT_S)", drain=False)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                      drain: bool = True) -> None:
        """Answer at once, then read (and drop) what the client is still sending, for as long as it keeps
        sending: a server that closes while the client is still sending makes it see a reset, not the answer."""
        field = "file" if scope["path"].startswith("/api/uploads") else None
        response = error_response(status, message, field, headers={"Connection": "close"})
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body, "more_body": True})
        drained = 0
        while drain and drained <= DRAIN_LIMIT:
            try:
                chunk = await asyncio.wait_for(receive(), DRAIN_IDLE_S)
            except TimeoutError:
                break
            if chunk["type"] != "http.request":
                break
            drained += len(chunk.get("body", b""))
            if not chunk.get("more_body", False):
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
