"""``create_app()``: the REST API under ``/api`` and the built panel (``ui_ext/dist``) at ``/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

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
    spend,
    uploads,
    vastai,
)
from reelflow.web.strict import reject_unknown_query

OPEN_ROUTERS = (health.router, session.router)
ROUTERS = (models.router, pipelines.router, downloads.router, runs.router, events.router, uploads.router,
           media.router, gpu.router, vastai.router, compat.router, pipeline_runs.router, spend.router)
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A body that cannot be parsed, or a Host that is not allowed"},
    408: {"description": "A body that stalled"}, 413: {"description": "A body over the size limit"}}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token or session cookie"},
    403: {"description": "A change made with the session cookie but without the X-Reelflow-Request header"}}
NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>reelflow</title>
<body><h1>reelflow API</h1><p>The panel is not built yet: run <code>npm ci &amp;&amp; npm run build</code>
in <code>ui_ext/</code>. The API is at <a href="/docs">/docs</a>.</p></body></html>"""


DOCS_ASSETS = "docs-assets"  # Swagger UI's files, copied from the npm package swagger-ui-dist by the panel's build


class PanelFiles:
    """The panel's files as they are on disk now: a panel built while the server runs is served at once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.directory / "index.html").is_file() and scope.get("path", "") in ("", "/", "/index.html"):
            await HTMLResponse(NOT_BUILT)(scope, receive, send)
            return
        await self.files(scope, receive, send)


def docs_page(panel: Path) -> HTMLResponse:
    """Swagger UI from the panel's own copy of its files (no CDN, so it works offline), or the CDN's before a build."""
    assets = panel / DOCS_ASSETS
    local = (assets / "swagger-ui-bundle.js").is_file() and (assets / "swagger-ui.css").is_file()
    urls = ({"swagger_js_url": f"/{DOCS_ASSETS}/swagger-ui-bundle.js",
             "swagger_css_url": f"/{DOCS_ASSETS}/swagger-ui.css", "swagger_favicon_url": "data:,"} if local else {})
    return get_swagger_ui_html(openapi_url="/openapi.json", title="reelflow API", **urls)


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
                  dependencies=[Depends(reject_unknown_query)], docs_url=None, redoc_url=None)
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
    app.state.panel_dir = panel
    app.add_api_route("/docs", lambda: docs_page(panel), include_in_schema=False)
    app.router.routes.append(PanelMount("/", app=PanelFiles(panel), name="panel"))
    return app
