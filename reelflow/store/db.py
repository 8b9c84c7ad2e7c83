"""Engine and sessions: SQLite in WAL mode with a busy timeout; the first engine a process makes for a store
creates it or upgrades it to the current schema (``reelflow.store.schema``, Alembic migrations).

On SQLite every write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock first,
waiting up to the busy timeout for it, so a transaction that reads and then writes can neither fail
at once with "database is locked" nor act on a row another process changed in between. Read-only
scopes (``session_scope(readonly=True)``) use a plain ``BEGIN`` and never wait for writers.

Write scopes of one process take turns on a lock of their own before SQLite's: a writer that finds SQLite's
lock taken sleeps in SQLite's busy handler in growing steps (up to 100 ms each), so 30 request threads writing
at once would mostly sleep past the moment the lock came free (``POST /api/runs`` under load waited seconds
that way); on the process lock the next writer starts as soon as the last one commits. Other processes still
meet at SQLite's lock, within the busy timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from reelflow.settings import get_settings
from reelflow.store import schema

BUSY_TIMEOUT_MS = 10_000
_begin = ContextVar("reelflow_sqlite_begin", default="BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_sqlite_writers = threading.Lock()
"""Held from a write transaction's BEGIN until its connection goes back to the pool (any thread may release it)."""
HOLDS_WRITE_TURN = "reelflow_write_turn"


def _sqlite_begin(connection) -> None:
    statement = "BEGIN" if connection.get_execution_options().get(schema.READ_ONLY) else _begin.get()
    if statement != "BEGIN":
        # past the busy timeout the writer goes on to SQLite's lock, which fails it as before if it is still taken
        pooled = connection.connection.info  # the pool record's: _end_write_turn gets it back
        if not pooled.get(HOLDS_WRITE_TURN):
            pooled[HOLDS_WRITE_TURN] = _sqlite_writers.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
    connection.exec_driver_sql(statement)


def _end_write_turn(_dbapi_connection, record) -> None:
    if record.info.pop(HOLDS_WRITE_TURN, False):
        _sqlite_writers.release()


def make_engine(url: str, *, set_up: bool = True) -> Engine:
    """An engine for the store at ``url``; ``set_up`` creates the store, or upgrades it, when not at the head
    (``reelflow db upgrade`` passes False to do that itself and report it)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "checkin", _end_write_turn)
        event.listen(engine, "close", _end_write_turn)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if set_up:
        token = _begin.set("BEGIN IMMEDIATE")  # an upgrade writes, even when the first caller only reads
        try:
            schema.ensure_current(engine)
        finally:
            _begin.reset(token)
    return engine


_factory_lock = threading.Lock()


@lru_cache(maxsize=4)
def _make_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(make_engine(url), expire_on_commit=False)


def _factory(url: str) -> sessionmaker[Session]:
    with _factory_lock:  # the first callers may race from several threads (the web server)
        return _make_factory(url)


@contextmanager
def session_scope(*, readonly: bool = False) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on any error. ``readonly`` scopes must not write."""
    token = _begin.set("BEGIN" if readonly else "BEGIN IMMEDIATE")
    session = _factory(get_settings().db_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        _begin.reset(token)
