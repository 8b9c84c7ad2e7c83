"""Slot releases as Prefect events: the hint that wakes waiters in other processes at once.

A process that gives a slot back to the server emits ``prefect.concurrency-limit.released`` on the
limit's resource, the event Prefect's own ``concurrency()`` emits for the same thing. Processes whose
jobs wait for that limit subscribe to it over the server's event stream (``/api/events/out``) and ask
the server again as soon as another process's release arrives. The event only says when to ask: the
server still grants every slot, and a late or lost event costs a poll interval, never a slot. Without
a Prefect API URL (ephemeral mode, one process) nothing is emitted or subscribed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from uuid import UUID, uuid4

from prefect.events import emit_event
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import PREFECT_API_URL

RELEASED = "prefect.concurrency-limit.released"
PROCESS_LABEL = "reelflow.process"
RECONNECTS = 3

log = logging.getLogger("reelflow.slots")
_process = uuid4().hex
_reported: set[str] = set()


def _new_process_id() -> None:
    global _process
    _process = uuid4().hex


os.register_at_fork(after_in_child=_new_process_id)


def _enabled() -> bool:
    return bool(PREFECT_API_URL.value())


def emit_released(name: str, limit_id: UUID, limit: int) -> None:
    """Tell other processes that this one gave a slot of ``name`` back to the server (never raises)."""
    if not _enabled():
        return
    try:
        emit_event(RELEASED, resource={"prefect.resource.id": f"prefect.concurrency-limit.{limit_id}",
                                       "prefect.resource.name": name, "slots-acquired": "1", "limit": str(limit),
                                       PROCESS_LABEL: _process})
    except Exception as exc:
        log.debug("could not emit a release event for '%s': %r", name, exc)


async def listen(name: str, on_release: Callable[[], None], subscribed: asyncio.Event) -> None:
    """Call ``on_release`` for every slot of ``name`` another process releases, until cancelled.

    ``subscribed`` is set while the subscription is live. Returns (after logging why, at info level the
    first time) if there is no event stream to subscribe to or it fails; callers then poll.
    """
    if not _enabled():
        return
    released = EventFilter(event=EventNameFilter(name=[RELEASED]),
                           resource=EventResourceFilter(labels=ResourceSpecification({"prefect.resource.name": name})))
    reason = "the server closed the event stream"
    try:
        async with get_events_subscriber(filter=released, reconnection_attempts=RECONNECTS) as subscriber:
            subscribed.set()
            async for event in subscriber:
                if event.resource.get(PROCESS_LABEL) != _process:
                    on_release()
    except Exception as exc:
        reason = repr(exc)
    finally:
        subscribed.clear()
    level = logging.DEBUG if name in _reported else logging.INFO
    _reported.add(name)
    log.log(level, "no release events for '%s' slots (%s); waiters poll the server instead", name, reason)
