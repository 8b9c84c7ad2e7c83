"""The background Prefect server begins its SQLite transactions IMMEDIATE: a transaction that read and then writes
after another writer does not fail with "database is locked" (Prefect's 503 and its client's 2-32 s back-off)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession

from reelflow.orchestration import prefect_sqlite
from reelflow.settings import reload_settings


def _another_writer(database: Path) -> str:
    """A second connection that will not wait (timeout 0) writes one row: what SQLite said."""
    connection = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO runs VALUES ('b')")
        connection.execute("COMMIT")
        return "B committed"
    except sqlite3.OperationalError as error:
        return f"B refused: {error}"
    finally:
        connection.close()


async def _read_then_write_while_another_writes(database: Path) -> str:
    """Transaction A (Prefect's own begin_transaction) reads; B writes meanwhile; then A writes. What happened."""
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{database}")
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE runs (name TEXT)")
    try:
        async with AsyncSession(engine) as session, config.begin_transaction(session):
            await session.execute(sa.text("SELECT count(*) FROM runs"))
            other = _another_writer(database)  # DEFERRED: B commits; IMMEDIATE: A holds the write lock already
            await session.execute(sa.text("INSERT INTO runs VALUES ('a')"))
    except sa.exc.OperationalError as error:
        return f"{other}; A failed: {error.orig}"
    finally:
        await engine.dispose()
    with sqlite3.connect(database) as connection:
        names = sorted(row[0] for row in connection.execute("SELECT name FROM runs"))
    return f"{other}; A wrote, rows {names}"


def test_prefects_default_deferred_transaction_fails_at_once_where_the_patched_one_waits(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    deferred = asyncio.run(_read_then_write_while_another_writes(tmp_path / "deferred.db"))
    assert deferred == "B committed; A failed: database is locked", deferred

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    assert prefect_sqlite.begin_immediate() is None
    immediate = asyncio.run(_read_then_write_while_another_writes(tmp_path / "immediate.db"))
    assert immediate == "B refused: database is locked; A wrote, rows ['a']", immediate


def test_the_background_server_runs_with_the_patch_applied(home: Path) -> None:
    log = (reload_settings().run_dir / "prefect-server.log").read_text(errors="replace")
    assert "reelflow: SQLite write transactions begin IMMEDIATE" in log, log[-2000:]
    assert "stay DEFERRED" not in log, log[-2000:]


def test_a_begin_transaction_of_another_shape_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def begin_transaction(self: object, session: object, with_for_update: bool = False, *,
                                read_only: bool = False) -> None:
        raise NotImplementedError

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", begin_transaction)
    refused = prefect_sqlite.begin_immediate()
    assert refused is not None and "is not the one this patch was written for" in refused
    assert AioSqliteConfiguration.begin_transaction is begin_transaction
