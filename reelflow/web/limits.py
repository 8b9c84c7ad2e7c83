"""Request body limits, enforced while the body streams in (before any parsing or spooling)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelflow.errors import BodyTooLargeError
from reelflow.settings import get_settings
from reelflow.web.errors import error_response

JSON_LIMIT = 1024 * 1024
FORM_OVERHEAD = 64 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # read (and drop) up to this much of a refused body so the client sees the 413


class BodyLimit:
    """413 for a body over the limit: uploads may carry REELFLOW_MAX_INPUT_BYTES, anything else 1 MiB."""

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
        if declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        received = 0
        started = complete = False

        async def counted_receive() -> Message:
            nonlocal received, complete
            message = await receive()
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
            await self._reject(scope, receive, send, limit, drain=not complete)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int, drain: bool = True) -> None:
        """Answer 413. The rest of a moderately large body is read first: a server that closes while the
        client is still sending makes the client see a reset instead of the answer."""
        drained = 0
        while drain and drained <= DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        field = "file" if scope["path"].startswith("/api/uploads") else None
        response = error_response(413, f"the request body is over {limit} bytes", field,
                                  headers={"Connection": "close"})
        await response(scope, receive, send)
