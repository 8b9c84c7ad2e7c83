"""Spend from the costs recorded on finished runs: per day, per model, month to date, the most expensive runs.

Money is summed exactly (``Decimal`` of each recorded amount) and a finished run with no recorded cost is counted
as of unknown cost, never as free."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import select

from reelflow.store.db import session_scope
from reelflow.store.models import Run

FINISHED = ("completed", "failed", "cancelled")
TOP = 10


class Tally(BaseModel):
    """Runs with a known cost (``usd``, exact text) and how many of unknown cost."""

    usd: str = "0"
    runs: int = 0
    unknown_cost_runs: int = 0


class DaySpend(Tally):
    day: date


class ModelSpend(Tally):
    model: str


class CostlyRun(BaseModel):
    run_id: str
    model: str
    kind: str
    status: str
    usd: str
    prompt: str | None
    created_at: datetime


class SpendReport(BaseModel):
    since: date
    until: date
    total: Tally
    month_to_date: Tally
    days: list[DaySpend]
    models: list[ModelSpend]
    most_expensive: list[CostlyRun]


class _Sum:
    def __init__(self) -> None:
        self.usd = Decimal(0)
        self.runs = 0
        self.unknown = 0

    def add(self, cost: Decimal | None) -> None:
        self.runs += 1
        if cost is None:
            self.unknown += 1
        else:
            self.usd += cost

    def fields(self) -> dict[str, object]:
        return {"usd": format(self.usd.normalize(), "f"), "runs": self.runs, "unknown_cost_runs": self.unknown}


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min)  # the store keeps naive UTC times


def spend_report(since: date, until: date, today: date | None = None) -> SpendReport:
    """Finished runs created from ``since`` to ``until`` (UTC days, both included), every day of the range listed;
    month to date is the current UTC month's, whatever the range."""
    today = today or datetime.now(UTC).date()
    month = today.replace(day=1)
    low = min(since, month)
    high = max(until, today)
    with session_scope(readonly=True) as s:
        rows = s.execute(select(Run.id, Run.model_id, Run.kind, Run.status, Run.cost_usd, Run.created_at)
                         .where(Run.status.in_(FINISHED), Run.created_at >= _start(low),
                                Run.created_at < _start(high + timedelta(days=1)))).all()
        days: dict[date, _Sum] = defaultdict(_Sum)
        models: dict[str, _Sum] = defaultdict(_Sum)
        total, month_total = _Sum(), _Sum()
        costly = []
        for row in rows:
            day = row.created_at.date()
            if month <= day <= today:
                month_total.add(row.cost_usd)
            if not since <= day <= until:
                continue
            for tally in (days[day], models[row.model_id], total):
                tally.add(row.cost_usd)
            if row.cost_usd:
                costly.append(row)
        costly.sort(key=lambda r: (-r.cost_usd, r.created_at))
        prompts = {r.id: (r.spec or {}).get("prompt") for r in s.execute(
            select(Run.id, Run.spec).where(Run.id.in_([r.id for r in costly[:TOP]])))}
    every_day = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    return SpendReport(
        since=since, until=until, total=Tally(**total.fields()), month_to_date=Tally(**month_total.fields()),
        days=[DaySpend(day=d, **(days[d] if d in days else _Sum()).fields()) for d in every_day],
        models=sorted((ModelSpend(model=m, **t.fields()) for m, t in models.items()),
                      key=lambda m: (-Decimal(m.usd), m.model)),
        most_expensive=[CostlyRun(run_id=r.id, model=r.model_id, kind=r.kind, status=r.status,
                                  usd=format(r.cost_usd.normalize(), "f"),
                                  prompt=prompts.get(r.id) if isinstance(prompts.get(r.id), str) else None,
                                  created_at=r.created_at.replace(tzinfo=r.created_at.tzinfo or UTC))
                        for r in costly[:TOP]])
