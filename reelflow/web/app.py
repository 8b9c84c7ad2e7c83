"""``create_app()``: the REST API under ``/api`` and the built panel (``ui_ext/dist``) at ``/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match, Mount
from starlette.types import Scope

from reelflow.core.api_token import auth_enabled, ensure_api_token
from reelflow.orchestration.prefect_server import prepare_environment
from reelflow.runs.launcher import Launcher
from reelflow.store.db import session_scope
from reelflow.web.auth import require_auth, warn_if_open
from reelflow.web.errors import install_error_handlers
from reelflow.web.headers import SecurityHeaders, allowed_hosts
from reelflow.web.limits import BodyLimit
from reelflow.web.routers import (
    compat,
    downloads,
    events,
    gpu,
    health,
    media,
    models,
    pipeline_runs,
    pipelines,
    runs,
    session,
    uploads,
    vastai,
)
from reelflow.web.strict import reject_unknown_query

OPEN_ROUTERS = (health.router, session.router)
ROUTERS = (models.router, pipelines.router, downloads.router, runs.router, events.router, uploads.router,
           media.router, gpu.router, vastai.router, compat.router, pipeline_runs.router)
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A body that cannot be parsed, or a Host that is not allowed"},
    408: {"description": "A body that stalled"}, 413: {"description": "A body over the size limit"}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token or session cookie"},
    403: {"description": "A change made with the session cookie but without the X-Reelflow-Request header"}}
NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>reelflow</title>
<body><h1>reelflow API</h1><p>The panel is not built yet: run <code>npm ci &amp;&amp; npm run build</code>
in <code>ui_ext/</code>. The API is at <a href="/docs">/docs</a>.</p></body></html>"""


class PanelMount(Mount):
    """The panel's files at ``/``, never answering for ``/api/...`` (so a wrong method there stays a 405)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path == "/api" or path.startswith("/api/"):
            return Match.NONE, {}
        return super().matches(scope)


def open_store() -> None:
    """Create the store's engine (and tables) once, before concurrent requests race to do it."""
    with session_scope():
        pass


def default_panel_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "ui_ext" / "dist"


def create_app(*, panel_dir: Path | None = None, launcher: Launcher | None = None,
               bind_host: str | None = None) -> FastAPI:
    """The API and the panel; ``launcher`` decides where the runs it creates render (default: here).
    Requests must name 127.0.0.1, localhost, ``bind_host`` or a REELFLOW_ALLOWED_HOSTS name as their Host."""
    prepare_environment()
    open_store()
    if auth_enabled():
        ensure_api_token()
    warn_if_open()
    runner = launcher or Launcher()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(runner.shutdown)

    app = FastAPI(title="reelflow", summary="Images and prompts to videos, orchestrated by Prefect.",
                  version="0.1.0", lifespan=lifespan, responses=COMMON_ERRORS,
                  dependencies=[Depends(reject_unknown_query)])
    app.state.launcher = runner
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(bind_host), www_redirect=False)
    app.add_middleware(SecurityHeaders)
    for router in OPEN_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(require_auth)], responses=AUTH_ERRORS)
    panel = panel_dir or default_panel_dir()
    app.state.panel_built = (panel / "index.html").is_file()
    if app.state.panel_built:
        app.router.routes.append(PanelMount("/", app=StaticFiles(directory=panel, html=True), name="panel"))
    else:
        app.add_api_route("/", lambda: HTMLResponse(NOT_BUILT), include_in_schema=False)
    return app
