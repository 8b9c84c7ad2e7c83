"""``/api/runs``: create, list with paging and filters, get, cancel, retry."""

from __future__ import annotations

from functools import partial

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from reelflow.errors import RunNotFoundError, SpecError
from reelflow.runs.launcher import Launcher
from reelflow.store.listing import SORT_CHOICES, RunFilter, runs_by_id
from reelflow.web.auth import require_token
from reelflow.web.schemas import RunCreate, RunOut, RunPage
from reelflow.web.services.present import page_readers, run_out, run_page
from reelflow.web.services.run_filters import run_filter
from reelflow.web.services.shared_reads import shared_reads
from reelflow.web.services.submit import cancel_run, create_run, retry_run, run_creators

router = APIRouter(prefix="/api/runs", tags=["runs"])
RunId = Path(min_length=1, max_length=64, description="A run id.")
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such run"},
          409: {"description": "Not possible in the run's state, or the model is unavailable"},
          422: {"description": "Bad input; 'field' names it"}}


def launcher_of(request: Request) -> Launcher:
    return request.app.state.launcher


@router.post("", status_code=201, response_model=RunOut, dependencies=[Depends(require_token)],
             responses={200: {"description": "An identical finished run, returned from cache"}, **ERRORS})
async def create(body: RunCreate, request: Request, response: Response) -> RunOut:
    """Validate and record a run, then render it in the background (201); an identical finished run is
    returned at once with ``cached: true`` (200) unless ``force`` is set."""
    prepared = await to_thread.run_sync(create_run, body, launcher_of(request), limiter=run_creators(body))
    if prepared.cached:
        response.status_code = 200
    return run_out(prepared.run)


@router.get("", response_model=RunPage, responses={422: ERRORS[422]})
async def list_runs(where: RunFilter = Depends(run_filter),
                    sort: str = Query("-created_at", max_length=20,
                                      description=f"One of {', '.join(SORT_CHOICES)}; '-' is high to low."),
                    limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=2**62)) -> Response:
    """Runs matching the filters, newest first unless ``sort`` says otherwise. Page on with ``offset`` and the
    ``as_of`` the first page answered: runs created meanwhile do not shift the pages."""
    if sort not in SORT_CHOICES:
        raise SpecError("sort", f"'{sort}' is not one of: {', '.join(SORT_CHOICES)}")
    read = partial(run_page, where, sort=sort, limit=limit, offset=offset)
    page = await shared_reads().get((where, sort, limit, offset),
                                    lambda: to_thread.run_sync(read, limiter=page_readers()))
    return Response(page, media_type="application/json")


@router.get("/{run_id}", response_model=RunOut, responses={404: ERRORS[404]})
def get_run(run_id: str = RunId) -> RunOut:
    found = runs_by_id([run_id])
    if not found:
        raise RunNotFoundError(run_id)
    return run_out(found[0])


@router.post("/{run_id}/cancel", response_model=RunOut, dependencies=[Depends(require_token)], responses=ERRORS)
def cancel(request: Request, run_id: str = RunId) -> RunOut:
    """Cancel a queued or running run wherever it executes (409 when it has already finished); answers once it
    has ended (``cancelled``), or after 15 s with its status then."""
    return run_out(cancel_run(run_id, launcher_of(request)))


@router.post("/{run_id}/retry", response_model=RunOut, dependencies=[Depends(require_token)], responses=ERRORS)
def retry(request: Request, run_id: str = RunId) -> RunOut:
    """Run a failed run again (same id, a new flow run, provider jobs resumed), or a cancelled one afresh
    (new id)."""
    return run_out(retry_run(run_id, launcher_of(request)))
