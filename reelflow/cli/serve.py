"""``reelflow serve``: the REST API and the web panel, served by uvicorn."""

from __future__ import annotations

import sys
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
    if via not in ("auto", "local", "deployment"):
        raise typer.BadParameter("choose auto, local or deployment", param_hint="--via")
    api = prefect_server.ensure_api()  # before reelflow.web imports Prefect, which settles on its server at import
    import uvicorn

    from reelflow.core.api_token import auth_enabled, ensure_api_token, login_url
    from reelflow.core.domain import Via
    from reelflow.runs import reconcile
    from reelflow.runs.launcher import Launcher
    from reelflow.settings import get_settings
    from reelflow.web import create_app
    from reelflow.web.access_log import log_config

    settings = get_settings()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    if not auth_enabled():
        err.print("[bold red]WARNING: REELFLOW_API_AUTH=off: the REST API answers anyone who can reach it, "
                  "with no token[/]")
    elif sys.stderr.isatty():  # never into a log file
        err.print(f"log in to the panel: {login_url(base, ensure_api_token())}")
    else:
        ensure_api_token()
        err.print(f"log in to the panel: {base}/?token=<the token in {settings.api_token_path}>")
    if host in ("0.0.0.0", "::") and not settings.extra_hosts:
        err.print("[yellow]note:[/] requests must name 127.0.0.1 or localhost as their host; set "
                  "REELFLOW_ALLOWED_HOSTS to this machine's name(s) to reach it from elsewhere")
    err.print(f"reelflow panel: {base}/   API docs: {base}/docs   Prefect API: {api}")
    launcher = Launcher(max_parallel=workers, via=cast(Via, via))
    reconcile.start_background(launcher)  # runs a killed server or worker left queued or running
    uvicorn.run(create_app(launcher=launcher, bind_host=host), host=host, port=port, timeout_graceful_shutdown=5,
                log_level="info", log_config=log_config())
