"""``/api/spend``: what the recorded runs cost, per day and per model, month to date, the most expensive runs."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from reelflow.errors import ApiError
from reelflow.store.spend import SpendReport, spend_report

router = APIRouter(prefix="/api/spend", tags=["spend"])
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _iso_day(value: object) -> object:
    """Only ``YYYY-MM-DD``: pydantic's lax date would also read ``0`` as 1970-01-01 (a Unix timestamp)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    raise ValueError("an ISO date is allowed (YYYY-MM-DD)")


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


@router.get("", response_model=SpendReport, responses={422: {"description": "A range that is reversed or too long"}})
def spend(since: IsoDay | None = Query(None, description="First UTC day (default: 29 days before `until`)."),
          until: IsoDay | None = Query(None, description="Last UTC day, included (default: today).")) -> SpendReport:
    """Recorded costs of finished runs as exact decimal text; runs with no recorded cost are counted in
    ``unknown_cost_runs``, never as free. There are no budget caps yet: month to date is from recorded costs."""
    last = until or datetime.now(UTC).date()
    first = since or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ApiError(422, f"since ({first}) is after until ({last})", "since")
    if (last - first).days + 1 > MAX_DAYS:
        raise ApiError(422, f"the range is {(last - first).days + 1} days; at most {MAX_DAYS} are allowed", "since")
    return spend_report(first, last)
