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
from starlette.routing import Match, Mount
from starlette.types import Scope

from reelflow.orchestration.prefect_server import prepare_environment
from reelflow.runs.launcher import Launcher
from reelflow.store.db import session_scope
from reelflow.web.errors import install_error_handlers
from reelflow.web.limits import BodyLimit
from reelflow.web.routers import compat, events, gpu, health, media, models, pipelines, runs, uploads, vastai
from reelflow.web.strict import reject_unknown_query

ROUTERS = (health.router, models.router, pipelines.router, runs.router, events.router, uploads.router,
           media.router, gpu.router, vastai.router, compat.router)
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A body that cannot be parsed"}, 413: {"description": "A body over the size limit"}}
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


def create_app(*, panel_dir: Path | None = None, launcher: Launcher | None = None) -> FastAPI:
    """The API and the panel; ``launcher`` decides where the runs it creates render (default: here)."""
    prepare_environment()
    open_store()
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
    for router in ROUTERS:
        app.include_router(router)
    panel = panel_dir or default_panel_dir()
    app.state.panel_built = (panel / "index.html").is_file()
    if app.state.panel_built:
        app.router.routes.append(PanelMount("/", app=StaticFiles(directory=panel, html=True), name="panel"))
    else:
        app.add_api_route("/", lambda: HTMLResponse(NOT_BUILT), include_in_schema=False)
    return app
