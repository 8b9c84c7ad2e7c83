"""Live events as Server-Sent Events: one run's history and progress, or every run's."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Request
from sse_starlette import EventSourceResponse

from reelflow.store import repo
from reelflow.web.sse import event_stream, resume_point

router = APIRouter(prefix="/api", tags=["events"])
SSE = {200: {"description": "text/event-stream: each message's data is one event as JSON "
             "(id, run_id, step, kind, message, progress, data, created_at)",
             "content": {"text/event-stream": {}}}}
RUN_SSE = {**SSE, 404: {"description": "No such run"}}


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse, responses=RUN_SSE)
async def run_events(request: Request, run_id: str = Path(min_length=1, max_length=64),
                     after: int | None = Query(None, ge=0, le=2**62)) -> EventSourceResponse:
    """The run's events from the start (or after ``after``), live until the run finishes; then ``end``."""
    start = resume_point(request, after, 0)
    repo.get_run(run_id)
    return EventSourceResponse(event_stream(request, run_id, start), ping=15)


@router.get("/events", response_class=EventSourceResponse, responses=SSE)
async def all_events(request: Request, after: int | None = Query(None, ge=0, le=2**62)) -> EventSourceResponse:
    """Events of every run from now on (or after ``after``): what the panel's run list listens to."""
    start = resume_point(request, after, repo.latest_event_id())
    return EventSourceResponse(event_stream(request, None, start), ping=15)
