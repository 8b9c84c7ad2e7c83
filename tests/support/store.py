"""Reading the session's store (the SQLite file under REELFLOW_HOME) as the tests check it: rows, one value,
a step's last row, a run's events."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from reelflow.core.money import from_micros
from reelflow.settings import get_settings


def store_rows(sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(get_settings().home / "reelflow.db") as db:
        return db.execute(sql, args).fetchall()


def store_value(sql: str, *args: object) -> Any:
    rows = store_rows(sql, *args)
    return rows[0][0] if rows else None


def step_row(run_id: str, name: str) -> dict[str, Any]:
    rows = store_rows("SELECT status, provider_job_id, detail, error, cost_micro_usd FROM steps WHERE run_id = ? AND "
                      "name = ? ORDER BY id DESC LIMIT 1", run_id, name)
    status, job, detail, error, cost = rows[0]
    return {"status": status, "job": job, "detail": json.loads(detail) if detail else None, "error": error,
            "cost": None if cost is None else from_micros(cost)}


def event_kinds(run_id: str) -> list[tuple[str, str]]:
    return [(k, m) for k, m in store_rows("SELECT kind, message FROM events WHERE run_id = ? ORDER BY id", run_id)]
