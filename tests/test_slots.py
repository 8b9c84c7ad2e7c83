"""Slots of a Prefect global concurrency limit held by jobs (``reelflow.orchestration.concurrency``), on the
session's Prefect server."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from reelflow.orchestration import concurrency
from reelflow.orchestration.concurrency import create_limit_if_missing, ensure_limit, provision_limits
from reelflow.settings import reload_settings


async def _active(name: str) -> tuple[int, int]:
    async with get_client() as client:
        found = await client.read_global_concurrency_limit_by_name(name)
    return found.limit, found.active_slots


@pytest.fixture()
async def limit() -> AsyncIterator[str]:
    name = f"test-slots-{uuid.uuid4().hex[:8]}"
    await ensure_limit(name, 2)
    yield name
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(name)


async def _jobs(name: str, count: int, hold_s: float) -> tuple[int, set[str]]:
    running, peak, leases = 0, 0, set()

    async def job() -> None:
        nonlocal running, peak
        async with concurrency.hold_slot(name) as slot:
            running += 1
            peak = max(peak, running)
            leases.add(str(slot.lease_id))
            await asyncio.sleep(hold_s)
            running -= 1

    await asyncio.gather(*(job() for _ in range(count)))
    return peak, leases


async def test_jobs_of_one_process_hand_their_slots_on_without_exceeding_the_limit(limit: str) -> None:
    peak, leases = await _jobs(limit, 6, 1.0)
    assert peak == 2
    assert len(leases) == 2, "each finished job handed its lease to a waiting one instead of asking the server"
    assert await _active(limit) == (2, 0)


async def test_after_the_fair_share_a_slot_goes_back_to_the_server(limit: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(concurrency, "FAIR_SHARE_S", 0.0)
    peak, leases = await _jobs(limit, 4, 0.3)
    assert peak <= 2 and len(leases) == 4
    assert await _active(limit) == (2, 0)


async def test_a_waiter_cancelled_before_its_turn_leaks_nothing(limit: str) -> None:
    await ensure_limit(limit, 1)
    holding = asyncio.Event()
    finish = asyncio.Event()

    async def holder() -> None:
        async with concurrency.hold_slot(limit):
            holding.set()
            await finish.wait()

    first = asyncio.create_task(holder())
    await holding.wait()
    waiter = asyncio.create_task(_jobs(limit, 1, 0.0))
    await asyncio.sleep(0)
    waiter.cancel()
    finish.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await _active(limit) == (1, 0)


async def test_a_missing_limit_is_an_error_not_an_unlimited_run() -> None:
    with pytest.raises(concurrency.SlotLimitMissingError, match="does not exist"):
        async with concurrency.hold_slot(f"test-missing-{uuid.uuid4().hex[:8]}"):
            pass


async def test_first_use_keeps_a_raised_limit_and_setup_applies_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"test-first-use-{uuid.uuid4().hex[:8]}"
    await create_limit_if_missing(name, 2)
    assert (await _active(name))[0] == 2
    await ensure_limit(name, 5)
    await create_limit_if_missing(name, 2)
    assert (await _active(name))[0] == 5, "first use must not shrink a limit someone raised"
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(name)

    monkeypatch.setenv("REELFLOW_FAL_CONCURRENCY", "3")
    reload_settings()
    try:
        await provision_limits()
        assert (await _active("fal"))[0] == 3
    finally:
        monkeypatch.delenv("REELFLOW_FAL_CONCURRENCY")
        reload_settings()
        await provision_limits()
    assert (await _active("fal"))[0] == 2


class _FlakyPrefect(http.server.BaseHTTPRequestHandler):
    """A Prefect API that drops the first connection, then answers 503 ``busy`` more times, then grants."""

    busy = 0
    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.calls.append(self.path)
        if len(self.calls) == 1:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if len(self.calls) <= 1 + type(self).busy:
            self._answer(503, {"detail": "database is locked"})
        else:
            self._answer(200, {"lease_id": str(uuid.uuid4()), "limits": [{"name": "x"}]})

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def flaky_prefect() -> Iterator[type[_FlakyPrefect]]:
    _FlakyPrefect.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FlakyPrefect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{server.server_port}/api"}):
            yield _FlakyPrefect
    finally:
        server.shutdown()
        server.server_close()


async def test_a_dropped_connection_and_503s_are_retried_within_milliseconds(
        flaky_prefect: type[_FlakyPrefect]) -> None:
    flaky_prefect.busy = 6
    started = time.monotonic()
    async with concurrency.SlotApi() as api:
        lease = await api.acquire("x", 60.0)
    assert isinstance(lease, uuid.UUID) and len(flaky_prefect.calls) == 8
    assert time.monotonic() - started < 10.0, "waits of 20 ms doubling to 1 s (3.4 s at most), not Prefect's 2 s and up"


async def test_a_server_busy_past_the_patience_fails_the_call(flaky_prefect: type[_FlakyPrefect]) -> None:
    flaky_prefect.busy = 10_000
    async with concurrency.SlotApi(patience_s=1.0) as api:
        with pytest.raises(httpx.HTTPStatusError, match="503"):
            await api.acquire("x", 60.0)
    assert len(flaky_prefect.calls) > 2


async def test_a_slot_request_rides_out_a_prefect_server_restart() -> None:
    """The server is gone (connections refused) for longer than the old 8 tries lasted, then comes back on its
    port, as ``reelflow up`` restarts it: the request is granted, not failed."""
    _FlakyPrefect.calls, _FlakyPrefect.busy = [], 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servers: list[http.server.ThreadingHTTPServer] = []
    outage_s = 6.0  # how long the server is away: the scenario, not a wait for something to happen

    def restart() -> None:
        time.sleep(outage_s)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _FlakyPrefect)
        servers.append(server)
        server.serve_forever()

    threading.Thread(target=restart, daemon=True).start()
    started = time.monotonic()
    try:
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            async with concurrency.SlotApi() as api:
                lease = await api.acquire("x", 60.0)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert isinstance(lease, uuid.UUID)
    assert time.monotonic() - started >= outage_s
