"""``reelflow setup``, ``reelflow up`` and ``reelflow worker``: provisioning and running the local stack."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from reelflow.errors import ReelflowError
from reelflow.orchestration import prefect_server
from reelflow.settings import get_settings

app = typer.Typer()
err = Console(stderr=True)
out = Console()
WATCH_INTERVAL_S = 1.0


def _server_api() -> str:
    api_url = prefect_server.ensure_api()
    if api_url is None:
        raise ReelflowError("this needs a Prefect server; unset REELFLOW_PREFECT_MODE=ephemeral or set PREFECT_API_URL")
    return api_url


@app.command()
def setup(
    skip_deployments: Annotated[bool, typer.Option("--skip-deployments", help="Only blocks, limits, pool.")] = False,
) -> None:
    """Register the Block types, create the concurrency limits, the work pool and the deployments (idempotent)."""
    api_url = _server_api()
    from reelflow.orchestration import provision

    report = asyncio.run(provision.setup(api_url, deployments=not skip_deployments))
    out.print(f"Prefect API: {api_url}")
    out.print(f"block types: {', '.join(report.blocks) or '-'}")
    out.print(f"concurrency limits: {', '.join(report.limits)}")
    out.print(f"work pool: {report.work_pool} ({'created' if report.pool_created else 'already there'})")
    if not skip_deployments:
        out.print(f"deployments: {', '.join(report.deployments)}")


def _raise_interrupt(*_: object) -> NoReturn:
    raise KeyboardInterrupt


@app.command()
def up(
    port: Annotated[int | None, typer.Option(help="Prefect server port (default REELFLOW_PREFECT_PORT).")] = None,
    database_url: Annotated[str | None, typer.Option(
        help="Prefect's database, e.g. postgresql+asyncpg://user:pw@host:5432/prefect "
        "(default REELFLOW_PREFECT_DATABASE_URL, else SQLite).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=32, help="Process workers to start.")] = 1,
    worker_limit: Annotated[int, typer.Option(min=1, help="Flow runs at once per worker.")] = 4,
    panel_port: Annotated[int, typer.Option(help="Port of the REST API + panel.")] = 8000,
    no_setup: Annotated[bool, typer.Option("--no-setup", help="Skip `reelflow setup`.")] = False,
    no_panel: Annotated[bool, typer.Option("--no-panel", help="Do not start the REST API + panel.")] = False,
) -> None:
    """Run the whole local stack (Prefect server, worker, REST API + panel) until Ctrl-C."""
    from reelflow.errors import AlreadyUpError
    from reelflow.orchestration.up import LocalStack, UpOptions

    settings = get_settings()
    configured = settings.prefect_database_url
    database_url = database_url or (configured.get_secret_value() if configured else None)
    options = UpOptions(port=port, database_url=database_url, workers=workers, worker_limit=worker_limit,
                        panel_port=panel_port, panel=not no_panel, setup=not no_setup)
    stack = LocalStack(settings, options, say=out.print)
    try:
        stack.claim()
    except AlreadyUpError as exc:
        err.print(f"[yellow]{exc}[/]; not starting another (stop that one with Ctrl-C first)")
        raise typer.Exit(1) from None
    signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        state = stack.start()
        checks = stack.wait_healthy()
        for name, ok in checks.items():
            out.print(f"  {name}: {'[green]healthy[/]' if ok else '[red]NOT healthy[/]'}")
        if not all(checks.values()):
            raise ReelflowError("some health checks failed")
        out.print("[green]all health checks green[/]")
        out.print(f"Prefect UI: {state['prefect_ui']}")
        out.print(f"panel:      {state['panel'] or '(not started)'}")
        for line in prefect_server.connect_hints(stack.server)[2:] if stack.server else []:
            out.print(line, soft_wrap=True)
        out.print("Ctrl-C here stops everything")
        while True:
            for message in stack.supervise():
                err.print(f"[yellow]{message}[/]")
            time.sleep(WATCH_INTERVAL_S)
    except KeyboardInterrupt:
        out.print("stopping...")
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {exc}")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not orphan what close stops
        stack.close()
        out.print("stopped")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # not Prefect's exit hooks: they would try for seconds to reach the server just stopped


@app.command()
def worker(
    limit: Annotated[int | None, typer.Option(min=1, help="Flow runs at once (default: no limit).")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: reelflow-<host>-<random>).")] = None,
) -> None:
    """Run a process worker for the reelflow pool in the foreground (add one per machine to scale out)."""
    from reelflow.orchestration import stack

    command, env, root = stack.worker_command(_server_api(), name or stack.worker_name(), limit=limit)
    os.chdir(root)
    os.execvpe(command[0], command, env)
