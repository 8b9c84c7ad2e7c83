"""The SQLite store: many processes at once (atomic writes, never "database is locked"), and retried writes."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
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
