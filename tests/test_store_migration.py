"""The store upgrades with Alembic: a store an earlier reelflow wrote (its own models' DDL, ``tests/fixtures/
stores``) is upgraded in place by a user's command and keeps every row; a copy is made first; processes
opening it at once upgrade it once; a newer store is refused untouched; head matches the models, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from reelflow.errors import StoreSchemaError
from reelflow.store import repo, schema
from reelflow.store.db import make_engine
from reelflow.store.migrations import HEAD, LEGACY_REVISIONS
from reelflow.store.migrations.compare import differences
from tests.fixtures.stores import old_store
from tests.support.cli import REELFLOW, run_cli
from tests.support.pg_cluster import pg_cluster
from tests.support.settings_env import SetEnv

PROCESSES = 4
RUN_IDS = ["run1" + "a" * 28, "run2" + "b" * 28, "run3" + "c" * 28]


def _old_sqlite_store(home: Path, schema_number: int) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "reelflow.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        old_store.build(conn, schema_number, old_store.models(schema_number))
    engine.dispose()
    return path


def _sqlite_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return old_store.rows(conn)
    finally:
        engine.dispose()


def _env(home: Path) -> dict[str, str]:
    return {"REELFLOW_HOME": str(home)}


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.mark.parametrize("schema_number", sorted(LEGACY_REVISIONS.keys() - {2}))
def test_an_old_store_opened_by_a_users_command_is_upgraded_and_keeps_every_row(tmp_path: Path,
                                                                               schema_number: int) -> None:
    path = _old_sqlite_store(tmp_path / "home", schema_number)
    # A process that still has the store open (a running `reelflow serve`) keeps its last write in the WAL
    # file: only a copy through SQLite's backup API has it.
    with closing(sqlite3.connect(path)) as held:
        held.execute("INSERT INTO events (run_id, step, kind, message, created_at) "
                     "VALUES (?, NULL, 'status', 'written last', '2026-11-30 12:00:01')", (RUN_IDS[1],))
        held.commit()
        assert path.with_name("reelflow.db-wal").stat().st_size > 0
        before = _sqlite_rows(path)
        listed = _json(run_cli("runs", "--json", env=_env(path.parent)))
        shown = _json(run_cli("status", RUN_IDS[0][:8], "--json", env=_env(path.parent)))

    assert listed["total"] == 3 and sorted(r["run_id"] for r in listed["runs"]) == RUN_IDS
    assert shown["status"] == "completed" and shown["cost_usd"] == 0.5
    assert [o["path"] for o in shown["outputs"]] == ["/home/u/.reelflow/storage/runs/run1/video.mp4"]
    after = _sqlite_rows(path)
    old_store.kept(before, after)
    assert {r["message"] for r in after["events"]} >= {"written last", "rendering", "completed"}
    assert [r["kind"] for r in after["runs"]] == ["video"] * 3, "the new column's default fills old rows"
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert old_store.revision(conn) == HEAD
        assert differences(conn) == []
    engine.dispose()

    copies = sorted(path.parent.glob(f"reelflow.db.before-{LEGACY_REVISIONS[schema_number]}-*"))
    assert len(copies) == 1, sorted(p.name for p in path.parent.iterdir())
    assert not path.with_name("reelflow.db.upgrade.lock").exists(), "the upgrade lock is gone with the upgrade"
    with closing(sqlite3.connect(copies[0])) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT version FROM schema_version").fetchall() == [(schema_number,)]
    assert _sqlite_rows(copies[0]) == before, "the copy is the store as it was, its last write included"


def test_costs_in_a_schema_5_store_become_exact_micro_dollars(tmp_path: Path) -> None:
    """A store the previous reelflow wrote (Alembic revision 0005, costs as float dollars) is upgraded by a user's
    command: each cost is the same amount in integer micro-dollars, an unknown cost stays unknown."""
    home = tmp_path / "home"
    home.mkdir()
    path = home / "reelflow.db"
    engine = create_engine(f"sqlite:///{path}")
    costs = {RUN_IDS[0]: 0.1, RUN_IDS[1]: 1.253001, RUN_IDS[2]: None}
    with engine.begin() as conn:
        command.upgrade(schema.alembic_config(conn), "0005")
        for run_id, cost in costs.items():
            conn.execute(text("INSERT INTO runs (id, idempotency_key, model_id, backend, status, spec, forced, "
                              "cost_usd, progress, created_at, kind) VALUES (:id, :id, 'wan-2.5-i2v', 'fal', "
                              "'completed', '{}', 0, :cost, 1.0, '2026-11-30 12:00:00', 'video')"),
                         {"id": run_id, "cost": cost})
            conn.execute(text("INSERT INTO steps (run_id, name, backend, status, attempts, cost_usd, started_at) "
                              "VALUES (:id, 'i2v_fal', 'fal', 'completed', 1, :cost, '2026-11-30 12:00:00')"),
                         {"id": run_id, "cost": cost})
    engine.dispose()

    shown = [_json(run_cli("status", run_id, "--json", env=_env(home)))["cost_usd"] for run_id in costs]
    assert shown == [0.1, 1.253001, None]
    with closing(sqlite3.connect(path)) as db:
        for table in ("runs", "steps"):
            stored = db.execute(f"SELECT cost_micro_usd, typeof(cost_micro_usd) FROM {table} ORDER BY rowid").fetchall()
            assert stored == [(100_000, "integer"), (1_253_001, "integer"), (None, "null")], table
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert "cost_usd" not in columns, f"{table} keeps no float cost"


def test_a_step_whose_process_died_before_the_upgrade_resumes_its_paid_job_after_it(tmp_path: Path,
                                                                                     env: SetEnv) -> None:
    path = _old_sqlite_store(tmp_path / "home", 1)  # schema 1: no slot columns yet
    env(REELFLOW_HOME=str(path.parent))

    step_id, job_id = repo.open_step(RUN_IDS[2], "i2v_fal", "fal", prefect_task_run_id=None)
    assert job_id == "req-9", "the resumed step polls the job it already paid for"
    repo.set_step_lease(step_id, "fal", "lease-1", message="holding a 'fal' slot after 0.0 s")
    assert repo.held_leases(RUN_IDS[2]) == ["lease-1"]
    repo.close_step(step_id, "completed")
    assert repo.held_leases(RUN_IDS[2]) == [], "a closed step holds no slot"
    assert [(s.name, s.attempts) for s in repo.get_run(RUN_IDS[2]).steps] == [("i2v_fal", 2)]


def test_processes_opening_an_old_store_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = _old_sqlite_store(tmp_path / "home", 3)
    before = _sqlite_rows(path)
    started = [subprocess.Popen([*REELFLOW, "runs", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, **_env(path.parent)}, stdin=subprocess.DEVNULL)
               for _ in range(PROCESSES)]
    ended = [(p.wait(timeout=180), *p.communicate()) for p in started]

    for code, out, err in ended:
        assert code == 0, err
        assert sorted(r["run_id"] for r in json.loads(out)["runs"]) == RUN_IDS
    told = [err for _, _, err in ended if "upgraded the store" in err]
    assert len(told) == 1, [err for _, _, err in ended]
    copies = list(path.parent.glob("reelflow.db.before-0003-*"))
    assert len(copies) == 1 and str(copies[0]) in told[0], "one process upgraded, after one copy it names"
    old_store.kept(before, _sqlite_rows(path))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_store_from_a_newer_reelflow_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "home" / "reelflow.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # what a later reelflow would leave: a revision and a column this one lacks
        conn.execute(text("ALTER TABLE runs ADD COLUMN priority INTEGER"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    digest, files = _digest(path), {p.name for p in path.parent.iterdir()}

    for args in (("runs",), ("db", "upgrade"), ("db", "current")):
        done = run_cli(*args, env=_env(path.parent))
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "revision '0099_future', which this reelflow does not know" in done.stderr, done.stderr
        assert "a newer reelflow wrote it" in done.stderr and "Traceback" not in done.stderr
    assert _digest(path) == digest, "nothing was changed"
    assert {p.name for p in path.parent.iterdir()} - {"reelflow.db-wal", "reelflow.db-shm", "secrets"} == files


def test_an_upgrade_that_fails_part_way_changes_nothing(tmp_path: Path) -> None:
    path = _old_sqlite_store(tmp_path / "home", 3)
    with closing(sqlite3.connect(path)) as db:  # 0004 adds steps.fan_index, after four other columns
        db.execute("ALTER TABLE steps ADD COLUMN fan_index TEXT")
        db.commit()
    before = _sqlite_rows(path)

    done = run_cli("runs", "--json", env=_env(path.parent))
    assert done.returncode == 1, done.stdout
    assert "upgrading it from revision 0003 to" in done.stderr and "nothing was changed" in done.stderr
    assert "duplicate column name: fan_index" in done.stderr and "Traceback" not in done.stderr
    copy = next(path.parent.glob("reelflow.db.before-0003-*"))
    assert str(copy) in done.stderr
    assert _sqlite_rows(path) == before, "no column was added, no row changed"
    with closing(sqlite3.connect(path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "pipeline_versions" not in tables and "alembic_version" not in tables
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(3,)]


def test_reelflow_db_current_reports_and_db_upgrade_upgrades_once(tmp_path: Path) -> None:
    path = _old_sqlite_store(tmp_path / "home", 3)
    env = _env(path.parent)

    assert _json(run_cli("db", "current", "--json", env=env)) == {
        "store": str(path), "revision": "0003", "legacy_schema": 3, "head": HEAD, "current": False}
    assert not list(path.parent.glob("reelflow.db.before-*")), "looking changes nothing"

    done = _json(run_cli("db", "upgrade", "--json", env=env))
    assert (done["from"], done["to"], done["changed"]) == ("0003", HEAD, True)
    assert Path(done["backup"]).is_file() and Path(done["backup"]).name.startswith("reelflow.db.before-0003-")

    again = run_cli("db", "upgrade", env=env)
    assert again.returncode == 0 and f"is at {HEAD}, the newest revision: nothing to do" in again.stdout
    assert len(list(path.parent.glob("reelflow.db.before-*"))) == 1, "no copy when nothing is upgraded"
    current = run_cli("db", "current", env=env)
    assert current.returncode == 0 and f"revision: {HEAD}" in current.stdout and "up to date" in current.stdout


def test_checking_an_up_to_date_store_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "home" / "reelflow.db"
    make_engine(f"sqlite:///{path}").dispose()
    with closing(sqlite3.connect(path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write transaction
        writer.execute("INSERT INTO run_owners (id, heartbeat_at) VALUES ('busy', '2026-12-01 00:00:00')")
        done = run_cli("runs", "--json", env=_env(path.parent), timeout=60)
        writer.execute("ROLLBACK")
    assert done.returncode == 0, done.stderr  # a check taking the write lock waits out the busy timeout, then fails
    assert _json(done)["total"] == 0


def test_head_is_the_one_revision_the_migrations_end_at() -> None:
    assert ScriptDirectory.from_config(schema.alembic_config()).get_heads() == [HEAD]


def _migrate_from_empty(conn: Connection) -> None:
    command.upgrade(schema.alembic_config(conn), "head")


def test_the_migrations_arrive_at_the_models_on_sqlite(tmp_path: Path) -> None:
    migrated = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    with migrated.begin() as conn:
        _migrate_from_empty(conn)
    with migrated.connect() as conn:
        assert differences(conn) == [], "a model change needs a migration (reelflow/store/migrations/versions)"
    with migrated.begin() as conn:  # the comparison can fail: a column the models do not have
        conn.execute(text("ALTER TABLE steps ADD COLUMN leftover VARCHAR(10)"))
    with migrated.connect() as conn:
        assert [d[0] for d in differences(conn)] == ["remove_column"]
    migrated.dispose()

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh' / 'reelflow.db'}")
    with fresh.connect() as conn:
        assert old_store.revision(conn) == HEAD and differences(conn) == []
    fresh.dispose()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    with pg_cluster() as url:
        yield url


async def _on_postgres(url: str, work: Any, *, reset: bool = False) -> Any:
    engine = create_async_engine(url)
    try:
        if reset:
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _name_lengths(conn: Connection) -> dict[str, int]:
    found = conn.execute(text("SELECT table_name, character_maximum_length FROM information_schema.columns "
                              "WHERE (table_name, column_name) IN (('steps', 'name'), ('events', 'step'))"))
    return dict(found.tuples().all())


def test_the_migrations_arrive_at_the_models_on_postgresql(postgres: str) -> None:
    def migrate_and_compare(conn: Connection) -> tuple[list[Any], dict[str, int]]:
        _migrate_from_empty(conn)
        return differences(conn), _name_lengths(conn)

    found, lengths = asyncio.run(_on_postgres(postgres, migrate_and_compare, reset=True))
    assert found == [], "a model change needs a migration (reelflow/store/migrations/versions)"
    assert lengths == {"steps": 120, "events": 120}

    def drift(conn: Connection) -> list[Any]:  # the comparison sees a length PostgreSQL enforces
        conn.execute(text("ALTER TABLE steps ALTER COLUMN name TYPE VARCHAR(50)"))
        return differences(conn)

    assert [d[0][0] for d in asyncio.run(_on_postgres(postgres, drift))] == ["modify_type"]


def test_an_old_postgresql_store_upgraded_by_four_at_once_keeps_every_row(postgres: str) -> None:
    def build(conn: Connection) -> dict[str, list[dict[str, Any]]]:
        old_store.build(conn, 3, old_store.models(3))
        return old_store.rows(conn)

    before = asyncio.run(_on_postgres(postgres, build, reset=True))

    async def four_at_once() -> list[schema.Upgrade]:
        return await asyncio.gather(*(_on_postgres(postgres, lambda c: schema.upgrade_in(c, "pg"))
                                      for _ in range(PROCESSES)))

    done = asyncio.run(four_at_once())
    assert sorted((u.before, u.after) for u in done) == sorted([(HEAD, HEAD)] * 3 + [("0003", HEAD)]), done

    def look(conn: Connection) -> tuple[Any, ...]:
        return (old_store.rows(conn), old_store.revision(conn), differences(conn), _name_lengths(conn),
                conn.execute(text("SELECT version FROM schema_version")).scalar())

    after, revision, found, lengths, guard = asyncio.run(_on_postgres(postgres, look))
    old_store.kept(before, after)
    assert (revision, found, lengths) == (HEAD, [], {"steps": 120, "events": 120})
    assert guard == schema.LEGACY_GUARD, "a reelflow from before Alembic refuses the upgraded store"

    def from_the_future(conn: Connection) -> None:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))

    asyncio.run(_on_postgres(postgres, from_the_future))
    with pytest.raises(StoreSchemaError, match="'0099_future', which this reelflow does not know"):
        asyncio.run(_on_postgres(postgres, lambda c: schema.upgrade_in(c, "pg")))
    assert asyncio.run(_on_postgres(postgres, lambda c: old_store.rows(c))) == after


def test_users_commands_opening_an_old_postgresql_store_at_once_upgrade_it_once(postgres: str,
                                                                               tmp_path: Path) -> None:
    def build(conn: Connection) -> dict[str, list[dict[str, Any]]]:
        old_store.build(conn, 3, old_store.models(3))
        return old_store.rows(conn)

    before = asyncio.run(_on_postgres(postgres, build, reset=True))
    # The venv has no synchronous PostgreSQL driver (users install psycopg); SQLAlchemy's asyncpg dialect in
    # its synchronous mode runs the same store code: make_engine, the check, the upgrade, the advisory lock.
    env = {**os.environ, "REELFLOW_HOME": str(tmp_path / "home"),
           "REELFLOW_DATABASE_URL": f"{postgres}?async_fallback=true"}
    started = [subprocess.Popen([*REELFLOW, "runs", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, stdin=subprocess.DEVNULL) for _ in range(PROCESSES)]
    ended = [(p.wait(timeout=180), *p.communicate()) for p in started]

    for code, out, err in ended:
        assert code == 0, err
        assert sorted(r["run_id"] for r in json.loads(out)["runs"]) == RUN_IDS
    told = [err for _, _, err in ended if "upgraded the store" in err]
    assert len(told) == 1, [err for _, _, err in ended]
    assert "from revision 0003 to" in told[0] and "no copy made" in told[0]
    after = asyncio.run(_on_postgres(postgres, lambda c: old_store.rows(c)))
    old_store.kept(before, after)
    assert asyncio.run(_on_postgres(postgres, old_store.revision)) == HEAD

