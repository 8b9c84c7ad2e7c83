"""Engine and sessions: SQLite in WAL mode with a busy timeout, tables created on first use and a store
written by an earlier schema brought up to date (``MIGRATIONS``).

On SQLite every write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock first,
waiting up to the busy timeout for it, so a transaction that reads and then writes can neither fail
at once with "database is locked" nor act on a row another process changed in between. Read-only
scopes (``session_scope(readonly=True)``) use a plain ``BEGIN`` and never wait for writers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from reelflow.settings import get_settings
from reelflow.store.models import SCHEMA_VERSION, Base

BUSY_TIMEOUT_MS = 10_000
# What turns a store of schema N - 1 into schema N; new tables need none (``create_all`` adds them).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: ("ALTER TABLE steps ADD COLUMN slot_limit VARCHAR(100)",
        "ALTER TABLE steps ADD COLUMN slot_lease_id VARCHAR(36)"),
    3: ("ALTER TABLE runs ADD COLUMN owner VARCHAR(120)",
        "CREATE INDEX IF NOT EXISTS ix_runs_owner ON runs (owner)"),
    4: ("ALTER TABLE pipelines ADD COLUMN definition JSON",
        "ALTER TABLE pipelines ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE runs ADD COLUMN kind VARCHAR(20) NOT NULL DEFAULT 'video'",
        "ALTER TABLE runs ADD COLUMN inputs JSON",
        "ALTER TABLE runs ADD COLUMN pipeline_version INTEGER",
        "ALTER TABLE steps ADD COLUMN kind VARCHAR(30)",
        "ALTER TABLE steps ADD COLUMN pipeline_step VARCHAR(100)",
        "ALTER TABLE steps ADD COLUMN fan_index INTEGER",
        "ALTER TABLE steps ADD COLUMN depends_on JSON",
        "ALTER TABLE steps ADD COLUMN idempotency_key VARCHAR(64)",
        "CREATE INDEX IF NOT EXISTS ix_steps_idempotency_key ON steps (idempotency_key)"),
}
_begin = ContextVar("reelflow_sqlite_begin", default="BEGIN IMMEDIATE")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own; _sqlite_begin does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql(_begin.get())


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _set_up_schema(engine)
    return engine


def _set_up_schema(engine: Engine) -> None:
    """Create missing tables and record the schema of a new store, or migrate an older one: in one write
    transaction, so processes opening the store at once do it one after another."""
    token = _begin.set("BEGIN IMMEDIATE")
    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
            conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
            found = conn.execute(text("SELECT version FROM schema_version")).scalar()
            if found is None:
                conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": SCHEMA_VERSION})
            elif found > SCHEMA_VERSION:
                raise RuntimeError(f"the store was written by a newer reelflow (schema {found} > {SCHEMA_VERSION})")
            elif found < SCHEMA_VERSION:
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[version]:
                        conn.execute(text(statement))
                conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION})
    finally:
        _begin.reset(token)


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
