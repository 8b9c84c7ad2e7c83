"""Slots of a Prefect global concurrency limit held by jobs (``reelflow.slots``), on the session's Prefect server."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.events.clients import PrefectEventSubscriber

from reelflow import slot_events, slots
from reelflow.limits import create_limit_if_missing, ensure_limit, provision_limits
from reelflow.settings import reload_settings
from reelflow.slot_api import Grant, SlotApi


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
        async with slots.hold_slot(name) as slot:
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
    monkeypatch.setattr(slots, "FAIR_SHARE_S", 0.0)
    peak, leases = await _jobs(limit, 4, 0.3)
    assert peak <= 2 and len(leases) == 4
    assert await _active(limit) == (2, 0)


async def test_a_waiter_cancelled_before_its_turn_leaks_nothing(limit: str) -> None:
    await ensure_limit(limit, 1)
    holding = asyncio.Event()
    finish = asyncio.Event()

    async def holder() -> None:
        async with slots.hold_slot(limit):
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


HOLDER = """
import asyncio, sys
from reelflow.slots import hold_slot

async def main() -> None:
    loop = asyncio.get_running_loop()
    async with hold_slot(sys.argv[1]):
        print("held", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
    print("released", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)

asyncio.run(main())
"""


async def _releases_heard_when_granted(name: str) -> int:
    async with slots.hold_slot(name):
        return slots.releases_heard(name)


async def test_a_slot_another_process_releases_wakes_a_waiter_here_through_the_event_stream(
        limit: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for wait in ("MAX_WAIT_S", "HOLDING_WAIT_S", "LISTENING_WAIT_S"):
        monkeypatch.setattr(slots, wait, 600.0)  # no poll is due within the test: only an event can wake the waiter
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, limit, cwd=Path(__file__).parent.parent,
                                                 stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert other.stdin is not None and other.stdout is not None
    try:
        async with asyncio.timeout(90):
            assert await other.stdout.readline() == b"held\n"
            # This process holds the limit's other slot, so the server's Retry-After plays no part either.
            async with slots.hold_slot(limit):
                waiter = asyncio.create_task(_releases_heard_when_granted(limit))
                await slots.until_subscribed(limit)
                other.stdin.write(b"release\n")
                heard = await waiter
                assert await other.stdout.readline() == b"released\n"
            listeners = [task for task in asyncio.all_tasks() if task.get_coro().__name__ == "_listen"]
            await asyncio.gather(*listeners, return_exceptions=True)
    finally:
        other.stdin.close()
        await other.wait()
    assert heard >= 1, "the waiter got the slot after hearing of the other process's release"
    assert all(task.cancelled() for task in listeners), "nobody waits any more, so nobody listens"
    assert await _active(limit) == (2, 0)


class _Seen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text, self.loop, self.seen = text, asyncio.get_running_loop(), asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.loop.call_soon_threadsafe(self.seen.set)


async def test_without_an_event_stream_waiters_still_get_slots_by_polling(
        limit: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from tests.emulators.fal_emulator import free_port

    dead = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setattr(slot_events, "get_events_subscriber", lambda **options: PrefectEventSubscriber(
        api_url=dead, **{**options, "reconnection_attempts": 0}))
    caplog.set_level(logging.DEBUG, logger="reelflow.slots")
    await ensure_limit(limit, 1)
    failed = _Seen("waiters poll the server instead")
    logging.getLogger("reelflow.slots").addHandler(failed)
    try:
        async with SlotApi() as api:
            grant = await api.acquire(limit, 60.0)
            assert isinstance(grant, Grant)
            waiter = asyncio.create_task(_releases_heard_when_granted(limit))
            async with asyncio.timeout(60):
                await failed.seen.wait()
                await api.release(grant.lease_id)  # no event: only polling can find this slot
                assert await waiter == 0
    finally:
        logging.getLogger("reelflow.slots").removeHandler(failed)
    assert await _active(limit) == (1, 0)


async def test_a_missing_limit_is_an_error_not_an_unlimited_run() -> None:
    with pytest.raises(slots.SlotLimitMissingError, match="does not exist"):
        async with slots.hold_slot(f"test-missing-{uuid.uuid4().hex[:8]}"):
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
