"""The SQLite store: many processes at once (atomic writes, never "database is locked"), and retried writes."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROCESSES = 6
RUNS = 60
FINAL = ("completed", "failed", "cancelled")


def _finish_every_run(home: str, status: str, start: Any) -> list[str]:
    """One process of a crowd: move every run to ``status`` through the real ``repo.mark_run``."""
    os.environ["REELFLOW_HOME"] = home
    from reelflow.store import repo

    repo.get_run("r0")  # open the engine before the race starts
    start.wait()
    errors = []
    for number in range(RUNS):
        try:
            repo.mark_run(f"r{number}", status, error=f"by {status}")
            repo.add_event(f"r{number}", "progress", status, progress=0.5)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    return errors


def test_processes_racing_to_finish_the_same_runs_finish_each_once(tmp_path: Path) -> None:
    """``mark_run`` reads the status and then writes: without a write lock taken up front, two processes
    both read "running" and both finish the run (or one gets "database is locked" at once)."""
    home = str(tmp_path / "home")
    os.environ["REELFLOW_HOME"], saved = home, os.environ["REELFLOW_HOME"]
    try:
        from reelflow.settings import reload_settings
        from reelflow.store import repo

        reload_settings()
        for number in range(RUNS):
            repo.create_run(run_id=f"r{number}", idempotency_key=f"k{number}", spec={}, model_id="local-kenburns",
                            backend="local")
            repo.mark_run(f"r{number}", "running")
    finally:
        os.environ["REELFLOW_HOME"] = saved
        reload_settings()
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Barrier(PROCESSES)
    statuses = [FINAL[i % len(FINAL)] for i in range(PROCESSES)]
    with context.Pool(PROCESSES) as pool:
        errors = pool.starmap(_finish_every_run, [(home, status, start) for status in statuses])
    assert [e for found in errors for e in found] == []

    with sqlite3.connect(Path(home) / "reelflow.db") as db:
        runs = db.execute("SELECT id, status, error FROM runs").fetchall()
        finals = db.execute("SELECT run_id, message FROM events WHERE kind = 'status' AND message NOT IN "
                            "('queued', 'running')").fetchall()
        progress = db.execute("SELECT count(*) FROM events WHERE kind = 'progress'").fetchone()[0]
    assert len(runs) == RUNS and all(status in FINAL and error == f"by {status}" for _, status, error in runs)
    ended_as: dict[str, set[str]] = {}
    for run_id, message in finals:
        ended_as.setdefault(run_id, set()).add(message.split(":")[0])
    assert ended_as == {run_id: {status} for run_id, status, _ in runs}, "a finished run was finished again"
    assert progress == RUNS * PROCESSES


def test_a_retried_step_recording_the_same_output_again_keeps_one_row() -> None:
    from reelflow.core.domain import MediaRef, ProviderOutput, StoredObject
    from reelflow.store import repo

    repo.create_run(run_id="r-output-twice", idempotency_key="k-output-twice", spec={}, model_id="local-kenburns",
                    backend="local")
    stored = StoredObject(key="runs/r-output-twice/video.mp4", sha256="a" * 64, bytes=10, content_type="video/mp4")
    produced = ProviderOutput(media=MediaRef(url="https://provider.example/out.mp4", content_type="video/mp4"))
    first = repo.add_output("r-output-twice", None, stored, produced)
    assert repo.add_output("r-output-twice", None, stored, produced) == first
    repo.add_output("r-output-twice", None, stored, produced.model_copy(update={"role": "poster"}))
    assert [o.role for o in repo.get_run("r-output-twice").outputs] == ["video", "poster"]


WRITERS = 10
HOLD_S = 0.02


def test_writers_of_one_process_take_turns_without_waiting_in_sqlite() -> None:
    """Ten threads write at once, each holding its transaction for HOLD_S (the work a request does in it). SQLite
    hands its lock to a waiting writer only when that writer's busy handler wakes up (sleeps of up to 100 ms);
    the process's own lock hands it on at the commit, so a BEGIN IMMEDIATE never waits for a writer of this
    process (before it did, the last for about WRITERS * HOLD_S)."""
    from sqlalchemy import event, update

    from reelflow.store import repo
    from reelflow.store.db import session_scope
    from reelflow.store.models import Run

    repo.create_run(run_id="r-writers", idempotency_key="k-writers", spec={}, model_id="local-kenburns",
                    backend="local")
    with session_scope(readonly=True) as s:
        engine = s.get_bind()
    begins: list[float] = []
    writers: set[int] = set()  # other threads of the test process (a heartbeat) may write meanwhile

    def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == "BEGIN IMMEDIATE" and threading.get_ident() in writers:
            conn.info["began"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "began" in conn.info:
            begins.append(time.perf_counter() - conn.info.pop("began"))

    start = threading.Barrier(WRITERS)

    def write(number: int) -> None:
        writers.add(threading.get_ident())
        start.wait()
        with session_scope() as s:
            s.execute(update(Run).where(Run.id == "r-writers").values(progress=number / WRITERS))
            time.sleep(HOLD_S)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, range(WRITERS)))
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert len(begins) == WRITERS
    assert max(begins) < WRITERS * HOLD_S / 4, f"a BEGIN IMMEDIATE waited {max(begins) * 1000:.0f} ms"


def test_an_identical_run_is_looked_up_by_its_key_index() -> None:
    """Given the key and the status, SQLite's planner took the status index and walked every completed run;
    the lookup must go by the key. Of several runs with the key, the newest completed one is found."""
    from sqlalchemy import event

    from reelflow.store import repo
    from reelflow.store.db import session_scope

    for name, status in (("old", "completed"), ("new", "completed"), ("failed", "failed"), ("open", "queued")):
        repo.create_run(run_id=f"r-key-{name}", idempotency_key="k-key-index", spec={}, model_id="local-kenburns",
                        backend="local")
        if status != "queued":
            repo.mark_run(f"r-key-{name}", status)
    with session_scope(readonly=True) as s:
        engine = s.get_bind()
    asked: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "WHERE runs.idempotency_key = ?" in statement:
            asked.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        found = repo.find_completed_run("k-key-index")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert found is not None and found.run_id == "r-key-new"
    assert asked, "no query by idempotency_key was seen"
    with session_scope(readonly=True) as s:
        connection = s.connection().connection.dbapi_connection
        assert connection is not None
        for statement, parameters in asked:
            plan = " ".join(row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))
            assert "ix_runs_idempotency_key" in plan and "ix_runs_status" not in plan, plan
