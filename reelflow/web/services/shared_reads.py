"""Identical reads asked at once are answered by one computation (a burst of ``GET /api/runs`` for the same page).

A request never gets an answer computed before it arrived: it joins the computation that starts next for its key
(all requests that came while one was under way wait for it to end, then share one fresh computation), so under a
burst each page is read and serialised about once per computation time instead of once per request.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Hashable


class SharedReads:
    """Per event loop: ``await reads.get(key, compute)`` runs ``compute`` at most twice at a time per key."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[bytes]] = {}
        self._next: dict[Hashable, asyncio.Future[bytes]] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        waiting = self._next.get(key)
        if waiting is None:
            running = self._running.get(key)
            if running is None:
                return await asyncio.shield(self._start(key, compute))
            waiting = self._next[key] = asyncio.ensure_future(self._after(running, key, compute))
        return await asyncio.shield(waiting)

    def _start(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> asyncio.Future[bytes]:
        task = self._running[key] = asyncio.ensure_future(compute())
        task.add_done_callback(lambda _: self._running.pop(key, None) if self._running.get(key) is task else None)
        return task

    async def _after(self, running: asyncio.Future[bytes], key: Hashable,
                     compute: Callable[[], Awaitable[bytes]]) -> bytes:
        await asyncio.wait([running])
        del self._next[key]  # later arrivals wait for the computation started here, then share the one after it
        return await self._start(key, compute)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedReads] = weakref.WeakKeyDictionary()


def shared_reads() -> SharedReads:
    """This event loop's instance (futures belong to the loop that made them)."""
    return _by_loop.setdefault(asyncio.get_running_loop(), SharedReads())
