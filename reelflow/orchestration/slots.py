"""Holding one slot of a Prefect global concurrency limit for the whole life of a provider job.

The Prefect server grants every slot: its limit is the single source of truth (``prefect gcl``
shows and resizes it), and a process never holds more leases than it was granted. What differs
from ``prefect.concurrency.asyncio.concurrency`` is the waiting:

- Prefect queues a process's waiters behind one that sleeps on the server's Retry-After, and a
  slot released in the same process wakes nobody. Here the waiters of a process share one poller;
  it asks the server again within ``MAX_WAIT_S`` while other processes hold every slot, and only
  every ``HOLDING_WAIT_S`` while this process holds some (their release wakes it at once), which
  spares the server's database a write per ask.
- A job that ends while another job of the same process waits hands its lease straight to that
  job, with no server round trip (a SQLite Prefect server answers colliding writes with 503, and
  Prefect's client waits 2 s or more before trying again). After
  ``FAIR_SHARE_S`` a lease goes back to the server instead, so other processes get their turn
  and a lowered limit takes effect.
- Several waiters are asked for at once (up to ``PARALLEL_ASKS`` requests), so a batch starts
  its first jobs together rather than one server round trip apart.

Leases are short (``LEASE_S``) and renewed, so the slot of a killed process frees itself;
``release_lease`` frees it at once when its id is known. Calls go through ``reelflow.orchestration.slot_api``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from uuid import UUID

from prefect.client.schemas.objects import ConcurrencyLeaseHolder

from reelflow.errors import ReelflowError
from reelflow.orchestration.slot_api import SlotApi

LEASE_S = 60.0
RENEW_EVERY_S = 20.0
MAX_WAIT_S = 1.0
HOLDING_WAIT_S = 3.0
FAIR_SHARE_S = 120.0
FAIR_HANDOVER_S = 1.5
PARALLEL_ASKS = 4
WAIT_NOTICE_S = 0.5
RELEASE_TIMEOUT_S = 15.0

log = logging.getLogger("reelflow.orchestration.slots")


class SlotLimitMissingError(ReelflowError):
    """The Prefect concurrency limit does not exist, so nothing would be limited."""


@dataclass(frozen=True)
class Slot:
    limit: str
    lease_id: UUID
    waited_s: float


@dataclass(frozen=True)
class _Lease:
    id: UUID
    granted_at: float


@dataclass
class _Local:
    """This event loop's waiters for one limit, in arrival order, and the task asking the server."""

    waiters: deque[tuple[asyncio.Future[_Lease], ConcurrencyLeaseHolder | None]] = field(default_factory=deque)
    poller: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Local]] = weakref.WeakKeyDictionary()


def _local(name: str) -> _Local:
    return _loops.setdefault(asyncio.get_running_loop(), {}).setdefault(name, _Local())


def _next_waiter(local: _Local) -> tuple[asyncio.Future[_Lease], ConcurrencyLeaseHolder | None] | None:
    while local.waiters and local.waiters[0][0].done():
        local.waiters.popleft()
    return local.waiters[0] if local.waiters else None


def _hand(local: _Local, lease: _Lease) -> bool:
    """Give ``lease`` to the first live waiter; False if nobody waits."""
    waiter = _next_waiter(local)
    if waiter is None:
        return False
    local.waiters.popleft()
    waiter[0].set_result(lease)
    return True


async def _ask(api: SlotApi, name: str, local: _Local) -> float | None:
    """Ask for a slot for each waiter (up to ``PARALLEL_ASKS`` at once) and hand the leases out; returns how
    long to wait before asking again, or None to ask again at once."""
    batch = [waiter for waiter in local.waiters if not waiter[0].done()][:PARALLEL_ASKS]
    answers = await asyncio.gather(*(api.acquire(name, LEASE_S, holder) for _, holder in batch),
                                   return_exceptions=True)
    for answer in answers:
        if isinstance(answer, UUID) and not _hand(local, _Lease(answer, time.monotonic())):
            await api.release(answer)
    if failed := next((answer for answer in answers if isinstance(answer, BaseException)), None):
        raise failed
    if any(answer is None for answer in answers):
        raise SlotLimitMissingError(f"the Prefect concurrency limit '{name}' does not exist; "
                                    "run `reelflow setup` or create it with `prefect gcl create`")
    denied = [answer for answer in answers if isinstance(answer, float)]
    if not denied:
        return None
    # Slots held here come back through a wake-up; only slots held elsewhere need asking for.
    return HOLDING_WAIT_S if local.held else min(max(min(denied), 0.0), MAX_WAIT_S)


async def _poll(name: str, local: _Local) -> None:
    """Ask the server for slots while anyone in this loop waits."""
    api: SlotApi | None = None
    try:
        api = SlotApi()
        while _next_waiter(local) is not None:
            local.wake.clear()
            wait = await _ask(api, name, local)
            if wait is not None:
                with suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await local.wake.wait()
    except Exception as exc:
        while (waiter := _next_waiter(local)) is not None:
            local.waiters.popleft()
            waiter[0].set_exception(exc)
    finally:
        local.poller = None  # before any await: a waiter arriving from now on starts a new poller
        if api is not None:
            await api.aclose()


async def _renew(name: str, lease: _Lease) -> None:
    async with SlotApi() as api:
        while True:
            await asyncio.sleep(RENEW_EVERY_S)
            try:
                await api.renew(lease.id, LEASE_S)
            except Exception as exc:  # the job keeps running; the next renewal may succeed
                log.warning("could not renew the lease on a '%s' slot: %s", name, exc)


async def release_lease(lease_id: UUID | str) -> None:
    """Give a slot back to the server by its lease id (a no-op when the lease already ended or expired)."""
    async with SlotApi() as api:
        await api.release(UUID(str(lease_id)))


async def _give_back(name: str, local: _Local, lease: _Lease) -> None:
    """Hand the lease to a waiter here, or return it to the server. After ``FAIR_SHARE_S`` it goes back to
    the server, and waiters here ask for it only after ``FAIR_HANDOVER_S``, so other processes (which ask
    at least every ``MAX_WAIT_S``) get their turn."""
    fair = time.monotonic() - lease.granted_at < FAIR_SHARE_S
    if fair and _hand(local, lease):
        return
    release = asyncio.ensure_future(release_lease(lease.id))
    try:
        await asyncio.wait_for(asyncio.shield(release), RELEASE_TIMEOUT_S)
    except Exception as exc:
        log.warning("could not release a '%s' slot (its lease expires within %.0f s): %r", name, LEASE_S, exc)
    finally:
        if fair:
            local.wake.set()
        else:
            asyncio.get_running_loop().call_later(FAIR_HANDOVER_S, local.wake.set)


async def _wait_for_lease(name: str, local: _Local, holder: ConcurrencyLeaseHolder | None,
                          on_wait: Callable[[], Awaitable[None]] | None) -> _Lease:
    granted: asyncio.Future[_Lease] = asyncio.get_running_loop().create_future()
    local.waiters.append((granted, holder))
    if local.poller is None or local.poller.done():
        local.poller = asyncio.create_task(_poll(name, local))
    try:
        if on_wait is not None:
            await asyncio.wait([granted], timeout=WAIT_NOTICE_S)
            if not granted.done():
                await on_wait()
        return await granted
    except asyncio.CancelledError:
        if granted.done() and not granted.cancelled() and granted.exception() is None:
            await _give_back(name, local, granted.result())
        granted.cancel()
        raise


@asynccontextmanager
async def hold_slot(name: str, *, holder: ConcurrencyLeaseHolder | None = None,
                    on_wait: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[Slot]:
    """Wait for a slot of the limit ``name`` and hold it until the block ends (also when cancelled).

    ``on_wait`` is awaited once if no slot was granted within ``WAIT_NOTICE_S``.
    """
    local = _local(name)
    started = time.monotonic()
    lease = await _wait_for_lease(name, local, holder, on_wait)
    local.held += 1
    renewer = asyncio.create_task(_renew(name, lease))
    try:
        yield Slot(limit=name, lease_id=lease.id, waited_s=time.monotonic() - started)
    finally:
        renewer.cancel()
        local.held -= 1
        await _give_back(name, local, lease)
