"""Server-Sent Events fed from the store's events table (polled on the server; browsers just listen)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from reelflow.errors import ApiError
from reelflow.store import repo
from reelflow.web.schemas import EventOut

POLL_INTERVAL_S = 0.25
MAX_EVENT_ID = 2**62
EVENT_ID = re.compile(r"[0-9]{1,19}", re.ASCII)


def resume_point(request: Request, after: int | None, default: int) -> int:
    """Where to start: the browser's ``Last-Event-ID`` on a reconnect, else ``after``, else ``default``."""
    header = request.headers.get("last-event-id", "").strip()
    if not header:
        return after if after is not None else default
    if not EVENT_ID.fullmatch(header) or int(header) > MAX_EVENT_ID:
        raise ApiError(400, f"Last-Event-ID must be an event id (digits 0-9, at most {MAX_EVENT_ID}); got "
                       f"{header[:30]!r}", "Last-Event-ID")
    return int(header)


async def _finished(run_id: str) -> bool:
    run = await asyncio.to_thread(repo.find_run, run_id)
    return run is None or run.status in repo.FINISHED


async def event_stream(request: Request, run_id: str | None, after: int,
                       poll_s: float = POLL_INTERVAL_S) -> AsyncIterator[dict[str, Any]]:
    """Yield store events after ``after`` as SSE messages (``id`` = event id, ``data`` = the event as JSON).

    A run's stream ends with an ``end`` event once the run has finished and every event was sent;
    the list-wide stream (``run_id=None``) runs until the client goes away.
    """
    last = after
    while not await request.is_disconnected():
        # Read the status before the events: the final status event is written with the status,
        # so a run seen finished here has all its events in the read below.
        done = run_id is not None and await _finished(run_id)
        events = await asyncio.to_thread(repo.events_after, run_id, last)
        for event in events:
            last = event.id
            yield {"id": str(event.id), "data": EventOut.model_validate(event.model_dump()).model_dump_json()}
        if done and not events:
            yield {"event": "end", "data": "{}"}
            return
        if not events:
            await asyncio.sleep(poll_s)
