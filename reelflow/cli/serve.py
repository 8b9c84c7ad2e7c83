"""``reelflow serve``: the REST API and the web panel, served by uvicorn."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.console import Console

from reelflow.orchestration import prefect_server

err = Console(stderr=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes it to your network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Runs rendered at once by this server.")] = 4,
    via: Annotated[str, typer.Option(help="auto: the video-pipeline deployment when a worker is online, else "
                                     "render here; local; deployment.")] = "auto",
) -> None:
    """Serve the REST API and the panel (http://HOST:PORT/). Runs started there go to the video-pipeline
    deployment when a worker is online (`--via auto`), else render in this process."""
    import uvicorn

    from reelflow.core.domain import Via
    from reelflow.runs import reconcile
    from reelflow.runs.launcher import Launcher
    from reelflow.settings import get_settings
    from reelflow.web import create_app

    if via not in ("auto", "local", "deployment"):
        raise typer.BadParameter("choose auto, local or deployment", param_hint="--via")
    api = prefect_server.ensure_api()
    if host not in ("127.0.0.1", "localhost", "::1") and get_settings().api_token is None:
        err.print("[yellow]warning:[/] listening beyond this machine without REELFLOW_API_TOKEN: "
                  "anyone who can reach it can start runs and change the GPU settings")
    err.print(f"reelflow panel: http://{host}:{port}/   API docs: http://{host}:{port}/docs   Prefect API: {api}")
    launcher = Launcher(max_parallel=workers, via=cast(Via, via))
    reconcile.start_background(launcher)  # runs a killed server or worker left queued or running
    uvicorn.run(create_app(launcher=launcher), host=host, port=port, timeout_graceful_shutdown=5, log_level="info")
