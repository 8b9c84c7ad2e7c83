"""The background Prefect server begins its SQLite transactions IMMEDIATE: a transaction that read and then writes
after another writer does not fail with "database is locked" (Prefect's 503 and its client's 2-32 s back-off)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession

from reelflow.orchestration import prefect_sqlite
from reelflow.settings import reload_settings


async def _read_then_write_while_another_writes(database: Path) -> str:
    """Transaction A reads; B tries to write meanwhile; then A writes. What happened, as text."""
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{database}")
    engine = await config.engine()
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE runs (name TEXT)")
    async with AsyncSession(engine) as first, AsyncSession(engine) as second:

        async def other_writer() -> None:
            async with config.begin_transaction(second):
                await second.execute(sa.text("INSERT INTO runs VALUES ('b')"))

        try:
            async with config.begin_transaction(first):
                await first.execute(sa.text("SELECT count(*) FROM runs"))
                writer = asyncio.create_task(other_writer())
                # DEFERRED lets B commit here; IMMEDIATE keeps B waiting at BEGIN until A commits.
                await asyncio.wait({writer}, timeout=2.0)
                b_waited = not writer.done()
                await first.execute(sa.text("INSERT INTO runs VALUES ('a')"))
            await writer
        except sa.exc.OperationalError as error:
            return f"A failed: {error.orig}"
        finally:
            await engine.dispose()
    async with (await config.engine()).connect() as connection:
        names = sorted(row[0] for row in await connection.exec_driver_sql("SELECT name FROM runs"))
    return f"both written {names}, B waited: {b_waited}"


def test_prefects_default_deferred_transaction_fails_at_once_where_the_patched_one_waits(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    deferred = asyncio.run(_read_then_write_while_another_writes(tmp_path / "deferred.db"))
    assert deferred.startswith("A failed: database is locked"), deferred

    monkeypatch.setattr(AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction)
    assert prefect_sqlite.begin_immediate() is None
    immediate = asyncio.run(_read_then_write_while_another_writes(tmp_path / "immediate.db"))
    assert immediate == "both written ['a', 'b'], B waited: True", immediate


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
