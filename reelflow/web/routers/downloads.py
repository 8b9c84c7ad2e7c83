"""``GET /api/runs/download``: the chosen runs' videos as one zip, streamed."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from reelflow.errors import SpecError
from reelflow.store.listing import runs_by_id
from reelflow.web.services.zip_stream import video_zip

router = APIRouter(prefix="/api/runs", tags=["runs"])
MAX_RUNS = 200


@router.get("/download", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}, 422: {"description": "Bad or unknown ids"}})
def download(ids: str = Query(max_length=MAX_RUNS * 33, description="Run ids, comma separated.")) -> StreamingResponse:
    """A zip of the runs' videos named ``<date>-<model>-<prompt words>-<short id>.mp4``; runs without a stored
    video are listed in ``missing.txt``."""
    wanted = list(dict.fromkeys(part.strip() for part in ids.split(",") if part.strip()))
    if not wanted or len(wanted) > MAX_RUNS:
        raise SpecError("ids", f"give 1 to {MAX_RUNS} run ids, comma separated")
    found = runs_by_id(wanted)
    unknown = sorted(set(wanted) - {run.run_id for run in found})
    if unknown:
        raise SpecError("ids", f"no run '{unknown[0]}'")
    name = f"reelflow-runs-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip"
    return StreamingResponse(video_zip(found), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
