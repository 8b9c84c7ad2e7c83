"""Prefect global concurrency limits, reelflow's only rate limiter: every limit client call is here.

The Prefect server grants every slot: its limit is the single source of truth (``prefect gcl``
shows and resizes it), and a process never holds more leases than it was granted. The limits are
``fal`` (``REELFLOW_FAL_CONCURRENCY`` slots) and one per GPU endpoint (``gpu-<block>``, shared by its
ComfyUI and SwarmUI, sized by the block's ``comfyui_concurrency``). What differs from
``prefect.concurrency.asyncio.concurrency`` is the waiting:

- Prefect queues a process's waiters behind one that sleeps on the server's Retry-After, and a
  slot released in the same process wakes nobody. Here the waiters of a process share one poller;
  it asks the server again within ``MAX_WAIT_S`` while other processes hold every slot, and only
  every ``HOLDING_WAIT_S`` while this process holds some (their release wakes it at once), which
  spares the server's database a write per ask.
- A job that ends while another job of the same process waits hands its lease straight to that
  job, with no server round trip (a SQLite Prefect server answers colliding writes with 503, and
  Prefect's client waits 2, 4, 8, 16 then 32 s before trying again). After
  ``FAIR_SHARE_S`` a lease goes back to the server instead, so other processes get their turn
  and a lowered limit takes effect.
- Several waiters are asked for at once (up to ``PARALLEL_ASKS`` requests), so a batch starts
  its first jobs together rather than one server round trip apart.
- The acquire, renew and release calls go to Prefect's REST endpoints with Prefect's own settings
  (URL, key or auth string, TLS) and retry 502/503, refused and dropped connections after tens of
  milliseconds, backing off to one try a second, for up to ``OUTAGE_S``: a server that is restarted
  (``reelflow up`` restarts a dead one on the same port within seconds) is waited for, not a reason to fail a job.

Leases are short (``LEASE_S``), renewed, and name their holder (the task run), so the slot of a
killed process frees itself. A step's slot (``fal_slot``, ``gpu_slot``) records its lease id on the
step row, and ``reelflow resume`` frees it at once with ``release_lease``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import task_run
from prefect.settings import get_current_settings
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
    wait_random_exponential,
)

from reelflow.errors import SlotLimitMissingError
from reelflow.settings import get_settings

if TYPE_CHECKING:
    from blocks.gpu_endpoint import GpuEndpoint
    from reelflow.jobs.step import Step

FAL_LIMIT = "fal"

LEASE_S = 60.0
RENEW_EVERY_S = 20.0
MAX_WAIT_S = 1.0
HOLDING_WAIT_S = 3.0
FAIR_SHARE_S = 120.0
FAIR_HANDOVER_S = 1.5
PARALLEL_ASKS = 4
WAIT_NOTICE_S = 0.5
RELEASE_TIMEOUT_S = 15.0

RETRY_STATUS = frozenset({HTTPStatus.BAD_GATEWAY, HTTPStatus.SERVICE_UNAVAILABLE})
OUTAGE_S = 90.0
FIRST_RETRY_S = 0.02
MAX_RETRY_S = 1.0

log = logging.getLogger("reelflow.orchestration.concurrency")


def gpu_limit_name(endpoint_key: str) -> str:
    """One limit per GPU endpoint (GpuEndpoint block name), shared by its ComfyUI and SwarmUI: ``gpu-default``."""
    return f"gpu-{endpoint_key}"


# --- creating and sizing limits (Prefect's client: rare calls, its slow retry does no harm) ---

_known: set[tuple[str, str]] = set()
_gpu_sizes: dict[str, int] = {}


async def ensure_limit(name: str, limit: int, *, slot_decay_per_second: float | None = None) -> None:
    """Create the limit, or set its size if it exists (safe to call any number of times)."""
    decay = {} if slot_decay_per_second is None else {"slot_decay_per_second": slot_decay_per_second}
    async with get_client() as client:
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                await client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit, **decay))
                return
            except Exception:  # a concurrent creator won the race; fall through to the update
                await client.read_global_concurrency_limit_by_name(name)
        await client.update_global_concurrency_limit(
            name, GlobalConcurrencyLimitUpdate(limit=limit, **decay))


async def create_limit_if_missing(name: str, limit: int) -> None:
    """First use: create the limit with ``limit`` slots, but never resize one that exists (someone may
    have raised it with ``prefect gcl update``). Checked once per process and API."""
    async with get_client() as client:
        key = (str(client.api_url), name)
        if key in _known:
            return
        try:
            await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        _known.add(key)


async def ensure_fal_limit() -> None:
    await _through_an_outage.copy()(create_limit_if_missing, FAL_LIMIT, get_settings().fal_concurrency)


async def provision_limits() -> None:
    """``reelflow setup``: the ``fal`` limit at ``REELFLOW_FAL_CONCURRENCY`` slots (created or resized)."""
    await ensure_limit(FAL_LIMIT, get_settings().fal_concurrency)


async def ensure_gpu_limit(name: str, size: int) -> None:
    """Create the GPU limit, or resize it to the block's value; once per process and size."""
    if _gpu_sizes.get(name) != size:
        await _through_an_outage.copy()(ensure_limit, name, size)
        _gpu_sizes[name] = size


# --- the slot calls, retried within milliseconds ---

def _http_client() -> httpx.AsyncClient:
    api = get_current_settings().api
    url = str(get_client().api_url)  # PREFECT_API_URL, or the ephemeral server Prefect starts without one
    headers = {}
    if api.auth_string:
        token = base64.b64encode(api.auth_string.get_secret_value().encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    elif api.key:
        headers["Authorization"] = f"Bearer {api.key.get_secret_value()}"
    verify: ssl.SSLContext | bool = True
    if api.tls_insecure_skip_verify:
        verify = False
    elif api.ssl_cert_file:
        verify = ssl.create_default_context(cafile=api.ssl_cert_file)
    return httpx.AsyncClient(base_url=url.rstrip("/") + "/", headers=headers, verify=verify,
                             timeout=api.request_timeout)


def _last_answer(state: RetryCallState) -> httpx.Response:
    """Out of attempts: the last response as it is, or the last connection error raised."""
    assert state.outcome is not None
    return state.outcome.result()


def _retrying(patience_s: float) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(httpx.TransportError)
        | retry_if_result(lambda response: response.status_code in RETRY_STATUS),
        stop=stop_after_delay(patience_s),
        # 20 ms doubling up to 1 s, jittered ±50 %: half of the backoff fixed plus up to the whole of it at random
        wait=wait_exponential(multiplier=FIRST_RETRY_S / 2, max=MAX_RETRY_S / 2)
        + wait_random_exponential(multiplier=FIRST_RETRY_S, max=MAX_RETRY_S),
        retry_error_callback=_last_answer,
    )


def _prefect_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in RETRY_STATUS
    return isinstance(exc, httpx.TransportError)


# Prefect's client retries a refused connection only once it has connected before, which a new client has not.
_through_an_outage = AsyncRetrying(retry=retry_if_exception(_prefect_unavailable), stop=stop_after_delay(OUTAGE_S),
                                   wait=wait_exponential(multiplier=0.1, max=MAX_RETRY_S), reraise=True)


class SlotApi:
    """``async with SlotApi() as api``: one HTTP connection pool to Prefect's v2 concurrency endpoints, each
    call retried for up to ``patience_s`` while the server is busy or away."""

    def __init__(self, patience_s: float = OUTAGE_S) -> None:
        self._http = _http_client()
        self._patience_s = patience_s

    async def __aenter__(self) -> SlotApi:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await _retrying(self._patience_s)(self._http.post, path, json=body)

    async def size(self, name: str) -> int | None:
        """How many slots the limit has; None if there is no such limit."""
        response = await _retrying(self._patience_s)(self._http.get, f"v2/concurrency_limits/{name}")
        if response.status_code == HTTPStatus.NOT_FOUND:
            return None
        response.raise_for_status()
        return int(response.json()["limit"])

    async def acquire(self, name: str, lease_s: float, holder: ConcurrencyLeaseHolder | None = None, *,
                      slots: int = 1) -> UUID | float | None:
        """A lease on ``slots`` slots; else the server's Retry-After (too few are free); None if no such limit."""
        body: dict[str, Any] = {"names": [name], "slots": slots, "mode": "concurrency", "lease_duration": lease_s}
        if holder is not None:
            body["holder"] = holder.model_dump(mode="json")
        response = await self._post("v2/concurrency_limits/increment-with-lease", body)
        if response.status_code == HTTPStatus.LOCKED:
            try:
                return float(response.headers.get("Retry-After", 1.0))
            except ValueError:
                return 1.0
        response.raise_for_status()
        answer = response.json()
        return UUID(answer["lease_id"]) if answer.get("limits") else None

    async def renew(self, lease_id: UUID, lease_s: float) -> None:
        response = await self._post(f"v2/concurrency_limits/leases/{lease_id}/renew", {"lease_duration": lease_s})
        response.raise_for_status()

    async def release(self, lease_id: UUID) -> None:
        """Give the slots back (a no-op when the lease already ended or expired)."""
        response = await self._post("v2/concurrency_limits/decrement-with-lease", {"lease_id": str(lease_id)})
        response.raise_for_status()


async def release_lease(lease_id: UUID | str) -> None:
    """Give a slot back to the server by its lease id (a no-op when the lease already ended or expired)."""
    async with SlotApi() as api:
        await api.release(UUID(str(lease_id)))


# --- holding one slot for the whole life of a job ---

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


def _missing(name: str) -> SlotLimitMissingError:
    return SlotLimitMissingError(f"the Prefect concurrency limit '{name}' does not exist; "
                                 "run `reelflow setup` or create it with `prefect gcl create`")


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
        raise _missing(name)
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


# --- a store step's slot: fal and the GPU ---

@asynccontextmanager
async def _step_slot(step: Step, name: str, on_wait: Callable[[], Awaitable[None]]) -> AsyncIterator[Slot]:
    """Hold a slot for ``step``, as its task run; the lease id goes on the step row for ``reelflow resume``."""
    holder = ConcurrencyLeaseHolder(type="task_run", id=task_run.id) if task_run.id else None
    async with hold_slot(name, holder=holder, on_wait=on_wait) as slot:
        step.record_lease(name, slot.lease_id, f"holding a '{name}' slot after {slot.waited_s:.1f} s")
        yield slot


@asynccontextmanager
async def fal_slot(step: Step, on_wait: Callable[[], Awaitable[None]]) -> AsyncIterator[Slot]:
    """One slot of the ``fal`` limit (created at ``REELFLOW_FAL_CONCURRENCY`` slots on first use)."""
    await ensure_fal_limit()
    async with _step_slot(step, FAL_LIMIT, on_wait) as slot:
        yield slot


@asynccontextmanager
async def gpu_slot(step: Step, gpu: GpuEndpoint, block: str) -> AsyncIterator[Slot]:
    """One slot of the GPU endpoint's limit, sized by the block's ``comfyui_concurrency``."""
    name = gpu_limit_name(block)
    await ensure_gpu_limit(name, gpu.comfyui_concurrency)

    async def waiting() -> None:
        await step.progress(0.0, f"waiting for a free GPU slot ('{name}' runs {gpu.comfyui_concurrency} "
                            "job(s) at a time)", force=True)

    async with _step_slot(step, name, waiting) as slot:
        yield slot


@asynccontextmanager
async def hold_every_slot(name: str) -> AsyncIterator[bool]:
    """Hold every slot of the limit (True), so no reelflow job can start; False if a job holds one.
    True as well when there is no such limit: no job can hold a slot of it."""
    async with SlotApi() as api:
        size = await api.size(name)
        answer = None if size is None else await api.acquire(name, LEASE_S, slots=size)
        if not isinstance(answer, UUID):
            yield answer is None
            return
        try:
            yield True
        finally:
            await api.release(answer)
