"""The query parameters of ``GET /api/runs`` read into one ``RunFilter``, each bad value a 422 naming its field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from fastapi import Query

from reelflow.errors import SpecError
from reelflow.store.listing import RunFilter
from reelflow.web.schemas import RunStatus

STATUSES = get_args(RunStatus)


def _statuses(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    given = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [part for part in given if part not in STATUSES]
    if unknown:
        raise SpecError("status", f"'{unknown[0]}' is not one of: {', '.join(STATUSES)} (several: a comma list)")
    return given


def _moment(field: str, text: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO date (a whole day: ``until`` takes all of it) or date-time; without a zone it is UTC."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end_of_day else 0)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SpecError(field, f"'{text}' is not an ISO date (2026-12-01) or date-time "
                               "(2026-12-01T09:30:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def run_filter(
    q: str | None = Query(None, max_length=200, description="Text the prompt contains (any case)."),
    status: str | None = Query(None, max_length=200, description=f"One of {', '.join(STATUSES)}, or a comma list."),
    model: str | None = Query(None, max_length=100),
    backend: str | None = Query(None, max_length=20),
    batch_id: str | None = Query(None, max_length=64),
    pipeline_id: str | None = Query(None, max_length=64, description="Runs started from this saved pipeline."),
    kind: Literal["video", "pipeline"] | None = Query(None, description="video, or pipeline (graph) runs."),
    since: str | None = Query(None, max_length=40, description="Created on or after this ISO date or date-time."),
    until: str | None = Query(None, max_length=40, description="Created before this date-time, or up to the end "
                              "of this ISO date."),
    as_of: str | None = Query(None, max_length=40, description="The as_of a first page answered (see RunPage)."),
) -> RunFilter:
    return RunFilter(statuses=_statuses(status), model=model, backend=backend, batch_id=batch_id,
                     pipeline_id=pipeline_id, kind=kind, text=q.strip() or None if q else None,
                     since=_moment("since", since), until=_moment("until", until, end_of_day=True),
                     as_of=_moment("as_of", as_of))
