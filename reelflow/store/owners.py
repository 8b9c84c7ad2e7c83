"""Which process owns a queued or running run, and whether that process is still there.

A process that records a run as ``queued`` or ``running`` becomes its owner (``host:pid:start-time``; the start
time tells a reused pid apart) and, from then on, beats a heartbeat into ``run_owners`` every
``HEARTBEAT_S`` from a daemon thread. On the owner's own host it is alive while that pid exists with that start
time (a SIGKILL is seen at once); from another host, while its heartbeat is younger than ``STALE_S``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import event, select, update

from reelflow.store.db import session_scope
from reelflow.store.models import Run, RunOwner, utcnow

HEARTBEAT_S = 10.0
STALE_S = 60.0
UNFINISHED = ("queued", "running", "waiting")  # waiting: paused at an approval step


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), None if it is gone."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 (one read)
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


@cache
def _host() -> str:
    return socket.gethostname()


def me() -> str:
    """This process as an owner id (computed per call: a forked child is another owner)."""
    return f"{_host()}:{os.getpid()}:{_start_time(os.getpid()) or '?'}"


@dataclass(frozen=True)
class Orphan:
    run_id: str
    status: str
    owner: str | None


def alive(owner: str | None, heartbeat_at: datetime | None) -> bool:
    if not owner:
        return False  # recorded before runs had owners: nobody is working on it
    host, _, rest = owner.partition(":")
    pid, _, started = rest.partition(":")
    if host == _host():
        return pid.isdigit() and _start_time(int(pid)) == started
    if heartbeat_at is None:
        return False
    if heartbeat_at.tzinfo is None:
        heartbeat_at = heartbeat_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - heartbeat_at < timedelta(seconds=STALE_S)


def orphans() -> list[Orphan]:
    """Queued or running runs whose owner is gone (one query, then a pid check per distinct owner)."""
    with session_scope(readonly=True) as s:
        rows = s.execute(select(Run.id, Run.status, Run.owner, RunOwner.heartbeat_at)
                         .outerjoin(RunOwner, RunOwner.id == Run.owner)
                         .where(Run.status.in_(UNFINISHED)).order_by(Run.created_at)).all()
    verdict: dict[tuple[str | None, datetime | None], bool] = {}
    found = []
    for run_id, status, owner, beat in rows:
        if (owner, beat) not in verdict:
            verdict[(owner, beat)] = alive(owner, beat)
        if not verdict[(owner, beat)]:
            found.append(Orphan(run_id, status, owner))
    return found


def owner_of(run_id: str) -> tuple[str | None, str | None]:
    """The run's ``(owner, status)`` as stored now (``(None, None)`` for an unknown run)."""
    with session_scope(readonly=True) as s:
        row = s.execute(select(Run.owner, Run.status).where(Run.id == run_id)).first()
    return (row[0], row[1]) if row else (None, None)


def claim(run_id: str, dead_owner: str | None) -> bool:
    """Make this process the run's owner if it still is unfinished and owned by ``dead_owner``: of several
    processes reconciling at once, exactly one wins."""
    with session_scope() as s:
        owner_matches = Run.owner.is_(None) if dead_owner is None else Run.owner == dead_owner
        done = s.execute(update(Run).where(Run.id == run_id, Run.status.in_(UNFINISHED), owner_matches)
                         .values(owner=me()).execution_options(synchronize_session=False))
        claimed = bool(done.rowcount)  # type: ignore[attr-defined]
    if claimed:
        _heartbeat.start()
    return claimed


class _Heartbeat:
    """One daemon thread per process, started the first time the process owns a run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None

    def start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        threading.Thread(target=self._loop, name="reelflow-owner-heartbeat", daemon=True).start()

    @staticmethod
    def _loop() -> None:
        stop = threading.Event()
        while True:
            with contextlib.suppress(Exception):  # a busy store now and then must not end the heartbeat
                beat()
            if stop.wait(HEARTBEAT_S):
                return


_heartbeat = _Heartbeat()


def beat() -> None:
    with session_scope() as s:
        s.merge(RunOwner(id=me(), heartbeat_at=utcnow()))


@event.listens_for(Run.status, "set")
def _stamp_owner(target: Run, value: str, _old: object, _initiator: object) -> None:
    """Whoever records a run as queued or running (even running again) owns it from then on."""
    if value in UNFINISHED:
        target.owner = me()
        _heartbeat.start()
