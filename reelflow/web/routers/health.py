"""``/api/health``: is the API up, is auth on, where Prefect is, is the panel built."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request

from reelflow.core.api_token import auth_enabled
from reelflow.settings import get_settings, prefect_api_url
from reelflow.store import repo
from reelflow.web.schemas import Health

router = APIRouter(prefix="/api", tags=["health"])


def _version() -> str:
    try:
        return version("reelflow")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    _, total = repo.list_runs(limit=1)
    return Health(status="ok", version=_version(), auth_required=auth_enabled(),
                  prefect_api_url=prefect_api_url(), panel=(request.app.state.panel_dir / "index.html").is_file(),
                  runs=total, max_input_bytes=get_settings().max_input_bytes,
                  max_input_pixels=get_settings().max_input_pixels)
