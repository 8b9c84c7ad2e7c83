"""The Prefect server reelflow starts: Prefect's own app (``prefect server start``'s), served by uvicorn, that asks
its database again when a write met SQLite's lock instead of answering 503 at once.

Prefect answers a write that met the lock (``database is locked``, a transaction rolled back) with 503, and its
client waits 2, 4, 8, 16 then 32 s before each new try: a burst of writes (24 flow runs of a batch creating their
task runs together) then stalls one of them for a minute. ``RetryLocked`` replays such a request here, after
50 ms growing to 1 s, for up to ``PATIENCE_S`` (2 min), as Prefect's client would (the transaction was rolled back, so
the replay is the client's own retry, only sooner); only then does the 503 reach the client. Anything else passes
through untouched.

    python -m reelflow.orchestration.prefect_app --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("reelflow.prefect_app")
PATIENCE_S = 120.0
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 1.0
BUSY_BODY = b'"Service Unavailable"'
"""What Prefect's handler of retryable database errors answers (``prefect.server.api.server``)."""


class _Held:
    """Passes an answer on, except a 503 of Prefect's retryable-error handler, which it keeps (``busy``)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._messages: list[Message] = []
        self._holding = False
        self._sent = False
        self.busy = False

    @property
    def untouched(self) -> bool:
        """Nothing was answered (nor kept)."""
        return not self._messages and not self._sent

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 503:
            self._holding = True
        if not self._holding:
            self._sent = True
            await self._send(message)
            return
        self._messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.busy = any(BUSY_BODY in m.get("body", b"") for m in self._messages)

    async def flush(self) -> None:
        for message in self._messages:
            await self._send(message)


class RetryLocked:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: App, patience_s: float = PATIENCE_S) -> None:
        self.app = app
        self.patience_s = patience_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, ended = await _read_body(receive)
        deadline = time.monotonic() + self.patience_s
        delay = FIRST_DELAY_S
        while True:
            held = _Held(send)
            try:
                await self.app(dict(scope, state=dict(scope.get("state", {}))), _replay(body, ended, receive), held)
            except Exception as exc:  # Starlette raises again what its handler answered 503 for
                if not (held.busy or (held.untouched and _locked(exc))) or time.monotonic() + delay > deadline:
                    await held.flush()
                    raise
            else:
                if not held.busy or time.monotonic() + delay > deadline:
                    await held.flush()
                    return
            log.debug("replaying %s %s: the database was locked", scope.get("method"), scope.get("path"))
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(2 * delay, MAX_DELAY_S)


def _locked(exc: BaseException) -> bool:
    """A write that met SQLite's lock (the error Prefect answers 503 for), raised before anything was answered."""
    cause = getattr(exc, "orig", None)
    return type(cause).__name__ == "OperationalError" and "database is locked" in str(cause)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body, and whether the client disconnected while sending it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, ended: bool, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent and not ended:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive() if not ended else {"type": "http.disconnect"}

    return again


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import (
        PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
        PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL,
        PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT,
        PREFECT_SERVER_LOGGING_LEVEL,
    )

    print(f"Prefect server (reelflow) on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(RetryLocked(create_app(final=True)), host=args.host, port=args.port,
                timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
                ws_ping_interval=PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL.value(),
                ws_ping_timeout=PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT.value(),
                log_level=PREFECT_SERVER_LOGGING_LEVEL.value().lower())


if __name__ == "__main__":
    main()
