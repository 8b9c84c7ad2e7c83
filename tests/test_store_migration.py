"""A store written by an earlier schema (1: no slot, owner or pipeline columns) keeps working after an upgrade."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from reelflow.settings import reload_settings
from reelflow.store import repo
from reelflow.store.models import SCHEMA_VERSION, Base

PROCESSES = 4


@pytest.fixture()
def old_store(tmp_path: Path) -> Iterator[Path]:
    """REELFLOW_HOME with a schema 1 store holding one run and its running step."""
    home = tmp_path / "home"
    home.mkdir()
    engine = create_engine(f"sqlite:///{home / 'reelflow.db'}")
    Base.metadata.create_all(engine)  # today's tables; schema 1 lacks the slot and owner columns
    engine.dispose()
    with sqlite3.connect(home / "reelflow.db") as db:
        db.executescript("""
            ALTER TABLE steps DROP COLUMN slot_limit;
            ALTER TABLE steps DROP COLUMN slot_lease_id;
            DROP INDEX ix_runs_owner;
            ALTER TABLE runs DROP COLUMN owner;
            ALTER TABLE pipelines DROP COLUMN definition;
            ALTER TABLE pipelines DROP COLUMN version;
            DROP TABLE pipeline_versions;
            ALTER TABLE runs DROP COLUMN kind;
            ALTER TABLE runs DROP COLUMN inputs;
            ALTER TABLE runs DROP COLUMN pipeline_version;
            DROP INDEX ix_steps_idempotency_key;
            ALTER TABLE steps DROP COLUMN kind;
            ALTER TABLE steps DROP COLUMN pipeline_step;
            ALTER TABLE steps DROP COLUMN fan_index;
            ALTER TABLE steps DROP COLUMN depends_on;
            ALTER TABLE steps DROP COLUMN idempotency_key;
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version VALUES (1);
            INSERT INTO runs (id, idempotency_key, model_id, backend, status, spec, forced, progress, created_at)
                VALUES ('old', 'k', 'local-kenburns', 'local', 'running', '{}', 0, 0.0, '2025-01-01 00:00:00');
            INSERT INTO steps (id, run_id, name, backend, status, provider_job_id, attempts, started_at)
                VALUES (1, 'old', 'i2v_fal', 'fal', 'running', 'req-1', 1, '2025-01-01 00:00:00');
        """)
    saved = os.environ["REELFLOW_HOME"]
    os.environ["REELFLOW_HOME"] = str(home)
    reload_settings()
    try:
        yield home
    finally:
        os.environ["REELFLOW_HOME"] = saved
        reload_settings()


def _version(home: Path) -> int:
    with sqlite3.connect(home / "reelflow.db") as db:
        return db.execute("SELECT version FROM schema_version").fetchone()[0]


def test_an_old_store_gains_the_slot_columns_and_keeps_its_rows(old_store: Path) -> None:
    run = repo.get_run("old")
    assert [(s.name, s.provider_job_id) for s in run.steps] == [("i2v_fal", "req-1")]
    assert _version(old_store) == SCHEMA_VERSION == 4
    assert repo.held_leases("old") == []

    step_id, job_id = repo.open_step("old", "i2v_fal", "fal", prefect_task_run_id=None)
    assert job_id == "req-1", "the resumed step polls the job it already paid for"
    repo.set_step_lease(step_id, "fal", "lease-1", message="holding a 'fal' slot after 0.0 s")
    assert repo.held_leases("old") == ["lease-1"]
    repo.close_step(step_id, "completed")
    assert repo.held_leases("old") == [], "a closed step holds no slot"


def _open_store(home: str, start: Any) -> str:
    os.environ["REELFLOW_HOME"] = home
    from reelflow.store import repo

    start.wait()
    return repo.get_run("old").status


def test_processes_opening_an_old_store_at_once_migrate_it_once(old_store: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Barrier(PROCESSES)
    with context.Pool(PROCESSES) as pool:
        statuses = pool.starmap(_open_store, [(str(old_store), start)] * PROCESSES)
    assert statuses == ["running"] * PROCESSES
    assert _version(old_store) == SCHEMA_VERSION
    with sqlite3.connect(old_store / "reelflow.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(steps)")]
        run_columns = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    assert columns.count("slot_limit") == 1 and columns.count("slot_lease_id") == 1
    assert run_columns.count("owner") == 1
