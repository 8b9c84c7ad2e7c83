"""Async client for fal's queue: submit once, wait with a deadline, resume from a stored request id.

Built on the real ``fal_client`` package, which reads ``FAL_KEY``, ``FAL_RUN_HOST`` and
``FAL_QUEUE_RUN_HOST`` itself (the hosts once, when it is first imported; this module imports it
lazily, on first use). Status, result and cancel rebuild their URLs from the endpoint and the
request id, so a fresh process can wait on an id stored by another one.

Retries: one layer, ``RetryPolicy`` (tenacity), bounded by ``attempts`` tries per call (default 6,
``REELFLOW_FAL_RETRY_ATTEMPTS``) with exponential backoff and jitter, each try bounded by
``call_timeout_s``. fal-client's own loop (10 tries inside every request) is cut to one try in
``translate.fal_module``, so one call is at most ``attempts`` requests, not ``attempts`` x 10.
Status, result, cancel and upload are retried on 408/409/429, 5xx, connection errors and stalled
calls. Submit is retried only when fal provably queued nothing (a refused connection, or an answered
408/409/429): a lost answer may hide a paid job, so it is never retried (FalSubmitUncertainError).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from reelflow.errors import FalDeadlineError, FalSubmitUncertainError, ModelUnavailableError, TransientProviderError
from reelflow.providers.fal.translate import (
    credentials_missing,
    describe_exception,
    fal_module,
    is_transient,
    nothing_queued,
    raise_translated,
)
from reelflow.providers.fal.updates import FalUpdate, UpdateTracker

if TYPE_CHECKING:
    from fal_client import AsyncClient, AsyncRequestHandle, Status

T = TypeVar("T")
POLL_FRACTION = 0.02
OnUpdate = Callable[[FalUpdate], Awaitable[None] | None]
INLINE_IMAGE_LIMIT = 7 * 1024 * 1024


async def _notify(on_update: OnUpdate | None, update: FalUpdate) -> None:
    if on_update is not None:
        outcome = on_update(update)
        if inspect.isawaitable(outcome):
            await outcome


def _interval(waited_s: float, minimum_s: float, maximum_s: float | None) -> float:
    if maximum_s is None:
        return minimum_s
    return min(maximum_s, max(minimum_s, waited_s * POLL_FRACTION))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of status, result and cancel calls; each try is also bounded by ``call_timeout_s``."""

    attempts: int = 6
    initial_s: float = 1.0
    max_s: float = 20.0
    call_timeout_s: float = 60.0


class FalQueue:
    """One fal-client connection pool; use it inside one event loop, ideally as ``async with``."""

    def __init__(self, *, key: str | None = None, retry: RetryPolicy | None = None) -> None:
        self._key = key
        self.retry = retry or RetryPolicy()
        self._client: AsyncClient | None = None

    async def __aenter__(self) -> FalQueue:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        # fal-client has no close(); its pool is the cached ``_client``, present once used.
        if client is not None and "_client" in vars(client):
            with contextlib.suppress(Exception):
                await (await client._client).aclose()

    def _fal_client(self, endpoint: str) -> AsyncClient:
        if self._key is None and (missing := credentials_missing()):
            raise ModelUnavailableError(endpoint, [missing])
        if self._client is None:
            self._client = fal_module().AsyncClient(key=self._key)
        return self._client

    async def _handle(self, endpoint: str, request_id: str) -> AsyncRequestHandle:
        try:
            return await self._fal_client(endpoint).get_handle(endpoint, request_id)
        except Exception as exc:
            raise_translated(exc, f"connection for {endpoint}", endpoint, request_id)

    async def _retrying(self, what: str, endpoint: str, request_id: str | None,
                        call: Callable[[], Awaitable[T]]) -> T:
        policy = self.retry

        async def attempt() -> T:
            async with asyncio.timeout(policy.call_timeout_s):
                return await call()

        try:
            return await self._policy(is_transient)(attempt)
        except Exception as exc:
            raise_translated(exc, what, endpoint, request_id)

    def _policy(self, retry_on: Callable[[BaseException], bool]) -> AsyncRetrying:
        policy = self.retry
        return AsyncRetrying(
            stop=stop_after_attempt(policy.attempts), retry=retry_if_exception(retry_on), reraise=True,
            wait=wait_exponential_jitter(initial=policy.initial_s, max=policy.max_s, jitter=policy.initial_s),
        )

    async def submit(self, endpoint: str, arguments: dict[str, Any], *,
                     webhook_url: str | None = None) -> str:
        """Queue one request and return its id; store the id before anything else.

        Tried again only while fal provably queued nothing (see the module docstring).
        """
        client = self._fal_client(endpoint)
        try:
            handle = await self._policy(nothing_queued)(client.submit, endpoint, arguments, webhook_url=webhook_url)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientProviderError(f"could not connect to fal to submit to {endpoint}: {exc}") from exc
        except httpx.TransportError as exc:
            raise FalSubmitUncertainError(
                f"submit to {endpoint} was sent but its answer was lost ({describe_exception(exc)}); "
                "a job may exist on fal, so it was not retried") from exc
        except Exception as exc:
            raise_translated(exc, f"submit to {endpoint}", endpoint)
        return handle.request_id

    async def _status(self, handle: AsyncRequestHandle, endpoint: str, *, with_logs: bool) -> Status:
        what = f"status of {handle.request_id} on {endpoint}"
        return await self._retrying(what, endpoint, handle.request_id,
                                    lambda: handle.status(with_logs=with_logs))

    @staticmethod
    def _feed(tracker: UpdateTracker, status: Status) -> FalUpdate | None:
        fal = fal_module()
        if isinstance(status, fal.Queued):
            return tracker.feed("queued", position=status.position)
        if isinstance(status, fal.InProgress):
            return tracker.feed("in_progress", logs=status.logs)
        return tracker.feed("completed", logs=status.logs, metrics=status.metrics, error=status.error)

    async def status(self, endpoint: str, request_id: str) -> FalUpdate:
        """The request's current state, with every log line so far."""
        handle = await self._handle(endpoint, request_id)
        update = self._feed(UpdateTracker(), await self._status(handle, endpoint, with_logs=True))
        assert update is not None
        return update

    async def wait(self, endpoint: str, request_id: str, *, on_update: OnUpdate | None = None,
                   deadline_s: float, poll_interval_s: float = 3.0,
                   poll_max_s: float | None = None) -> dict[str, Any]:
        """Poll until the request completes, then return its result JSON.

        Polls every ``poll_interval_s``; with ``poll_max_s`` the interval grows with the time waited
        (``POLL_FRACTION`` of it) up to that cap, so a finished job is noticed within a small share
        of its run time without polling long jobs needlessly often.

        ``on_update`` gets ``Queued`` when the position changes, ``InProgress`` with the log lines
        not seen before, and ``Completed`` once. A failed result (e.g. 422) raises FalRequestError
        with fal's ``detail``. Past ``deadline_s`` (counted from this call) the request is
        cancelled and FalDeadlineError raised.
        """
        handle = await self._handle(endpoint, request_id)
        tracker = UpdateTracker()
        started = time.monotonic()
        scope = asyncio.timeout(deadline_s)
        try:
            async with scope:
                while True:
                    status = await self._status(handle, endpoint, with_logs=True)
                    update = self._feed(tracker, status)
                    if update is not None:
                        await _notify(on_update, update)
                    if isinstance(status, fal_module().Completed):
                        break
                    await asyncio.sleep(_interval(time.monotonic() - started, poll_interval_s, poll_max_s))
                return await self._retrying(f"result of {request_id} on {endpoint}", endpoint, request_id,
                                            handle.get)
        except TimeoutError:
            if not scope.expired():
                raise
        raise FalDeadlineError(endpoint, request_id, deadline_s, await self._cancel_quietly(handle))

    async def _cancel_quietly(self, handle: AsyncRequestHandle) -> str:
        try:
            async with asyncio.timeout(self.retry.call_timeout_s):
                await handle.cancel()
        except Exception as exc:
            return f"the cancel failed ({describe_exception(exc)})"
        return "cancel requested"

    async def cancel(self, endpoint: str, request_id: str) -> None:
        """Ask fal to cancel; reliable only while queued. A refusal (already completed) raises."""
        handle = await self._handle(endpoint, request_id)
        await self._retrying(f"cancel of {request_id} on {endpoint}", endpoint, request_id, handle.cancel)

    async def upload(self, data: bytes, content_type: str, file_name: str | None = None) -> str:
        """Upload to fal's CDN and return the URL (fal-client's upload, retried as a whole)."""
        client = self._fal_client("fal storage")
        return await self._retrying("upload", "fal storage", None,
                                    lambda: client.upload(data, content_type, file_name))


async def image_reference(data: bytes, content_type: str, *, file_name: str | None = None) -> str:
    """What to pass as a model's ``image_url``.

    Up to 7 MB of raw bytes: a ``data:`` URI with the image inline (no upload, nothing stored at
    fal). Larger: uploaded through fal-client to fal's CDN (needs credentials) and its https URL
    returned, since a base64 body that large is slow and may exceed request limits.
    """
    if len(data) <= INLINE_IMAGE_LIMIT:
        return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
    async with FalQueue() as fal:
        return await fal.upload(data, content_type, file_name)

