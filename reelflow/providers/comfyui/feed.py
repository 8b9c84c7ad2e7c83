"""One reconnecting websocket per client id: text frames in, binary preview frames skipped."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

log = logging.getLogger(__name__)

OnMessage = Callable[[dict[str, Any]], Awaitable[None]]
OnConnect = Callable[[], Awaitable[None]]


async def follow(url: str, headers: dict[str, str], *, on_message: OnMessage, on_connect: OnConnect,
                 attempted: asyncio.Event, open_timeout_s: float = 15.0, max_backoff_s: float = 10.0) -> None:
    """Read ``url`` until cancelled, reconnecting with the same URL (hence the same clientId)."""
    failures, warned = 0, False
    while True:
        try:
            async with connect(url, additional_headers=headers, open_timeout=open_timeout_s, ping_interval=20,
                               ping_timeout=20, close_timeout=2, max_size=2**24) as socket:
                failures = 0
                attempted.set()
                await on_connect()
                async for frame in socket:
                    if isinstance(frame, str):
                        await _dispatch(frame, on_message)
        except InvalidStatus as exc:
            if not warned:
                log.warning("ComfyUI websocket refused (HTTP %s); relying on polling", exc.response.status_code)
            warned = True
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.debug("ComfyUI websocket dropped: %r", exc)
        attempted.set()
        failures += 1
        await asyncio.sleep(min(max_backoff_s, 0.25 * 2 ** min(failures, 8)))


async def _dispatch(frame: str, on_message: OnMessage) -> None:
    try:
        message = json.loads(frame)
    except ValueError:
        return
    if isinstance(message, dict):
        await on_message(message)
