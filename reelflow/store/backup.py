"""A consistent copy of a SQLite store beside it, through SQLite's online backup API (a store in WAL mode has
recent writes in its ``-wal`` file, which copying ``reelflow.db`` alone would miss)."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path


def backup_sqlite(path: Path, label: str) -> Path:
    """Copy the store at ``path`` to ``<name>.<label>-<UTC time>`` beside it and return that path; the copy
    appears whole or not at all."""
    target = path.with_name(f"{path.name}.{label}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
    partial = target.with_name(f"{target.name}.partial")
    with closing(sqlite3.connect(path)) as source, closing(sqlite3.connect(partial)) as copy:
        source.backup(copy)
    os.replace(partial, target)
    return target
