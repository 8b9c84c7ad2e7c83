"""The runs gallery's query: filters, prompt search, sort and a page, read as rows in four plain queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, func, or_, select

from reelflow.store.db import session_scope
from reelflow.store.models import Output, Pipeline, Run, Step, attributes
from reelflow.store.views import RunView, run_view

_VIDEO_SECONDS = (select(Output.duration_s).where(Output.run_id == Run.id, Output.role == "video")
                  .order_by(Output.id).limit(1).correlate(Run).scalar_subquery())
SORTS: dict[str, Any] = {"created_at": Run.created_at, "cost": Run.cost_usd, "duration": _VIDEO_SECONDS}
"""Sort keys ``GET /api/runs?sort=`` takes; a leading ``-`` sorts high to low (``-created_at`` is the default)."""
SORT_CHOICES = tuple(f"{sign}{key}" for key in SORTS for sign in ("-", ""))


@dataclass(frozen=True)
class RunFilter:
    """Which runs a page shows: every field left None matches all. ``as_of`` hides runs created after it, so the
    pages of one listing stay the same while new runs arrive."""

    statuses: tuple[str, ...] = ()
    model: str | None = None
    backend: str | None = None
    batch_id: str | None = None
    pipeline_id: str | None = None
    kind: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    as_of: datetime | None = None

    def conditions(self) -> list[Any]:
        wanted: list[Any] = []
        if self.statuses:
            wanted.append(Run.status.in_(self.statuses))
        for column, value in ((Run.model_id, self.model), (Run.backend, self.backend), (Run.batch_id, self.batch_id),
                              (Run.pipeline_id, self.pipeline_id), (Run.kind, self.kind)):
            if value is not None:
                wanted.append(column == value)
        if self.text:
            needle = self.text.lower()
            wanted.append(or_(func.lower(Run.spec["prompt"].as_string()).contains(needle, autoescape=True),
                              func.lower(cast(Run.inputs, Text)).contains(needle, autoescape=True)))
        if self.since is not None:
            wanted.append(Run.created_at >= self.since)
        if self.until is not None:
            wanted.append(Run.created_at < self.until)
        if self.as_of is not None:
            wanted.append(Run.created_at <= self.as_of)
        return wanted


def _order(sort: str) -> list[Any]:
    descending = sort.startswith("-")
    column = SORTS[sort.removeprefix("-")]
    first = (column.desc() if descending else column.asc()).nulls_last()
    tie = Run.created_at.desc() if descending else Run.created_at.asc()
    return [first, tie, Run.id.desc() if descending else Run.id.asc()]


def _fill(s: Any, rows: dict[str, SimpleNamespace]) -> None:
    """Steps, outputs and saved pipeline names of these runs: one query each, whatever the page size."""
    if not rows:
        return
    for table, into in ((Step.__table__, "steps"), (Output.__table__, "outputs")):
        for found in s.execute(select(table).where(table.c.run_id.in_(rows)).order_by(table.c.id)).mappings():
            getattr(rows[found["run_id"]], into).append(SimpleNamespace(**attributes(table, found)))
    saved = {row.pipeline_id for row in rows.values() if row.pipeline_id}
    names = {found.id: found.name for found in s.execute(select(Pipeline.id, Pipeline.name)
                                                           .where(Pipeline.id.in_(saved)))} if saved else {}
    for row in rows.values():
        row.pipeline_name = names.get(row.pipeline_id) or (
            row.spec.get("name") if row.kind == "pipeline" and isinstance(row.spec, dict) else None)


def _rows(s: Any, statement: Any) -> dict[str, SimpleNamespace]:
    return {row["id"]: SimpleNamespace(**attributes(Run.__table__, row), steps=[], outputs=[], pipeline_name=None)
            for row in s.execute(statement).mappings()}


def find_runs(where: RunFilter, *, sort: str = "-created_at", limit: int = 20,
              offset: int = 0) -> tuple[list[RunView], int]:
    """A page of the runs ``where`` matches in ``sort`` order (see ``SORTS``), and how many match in all."""
    with session_scope(readonly=True) as s:
        conditions = where.conditions()
        total = s.scalar(select(func.count()).select_from(Run).where(*conditions)) or 0
        rows = _rows(s, select(Run.__table__).where(*conditions).order_by(*_order(sort)).limit(limit).offset(offset))
        _fill(s, rows)
        return [run_view(row, row.pipeline_name) for row in rows.values()], total


def runs_by_id(run_ids: list[str]) -> list[RunView]:
    """These runs (those the store has), in the order given."""
    if not run_ids:
        return []
    with session_scope(readonly=True) as s:
        rows = _rows(s, select(Run.__table__).where(Run.id.in_(run_ids)))
        _fill(s, rows)
    return [run_view(rows[run_id], rows[run_id].pipeline_name) for run_id in dict.fromkeys(run_ids) if run_id in rows]
