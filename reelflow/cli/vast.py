"""``reelflow vast list|start|stop``: the vast.ai instances behind your GPU endpoint."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from reelflow.cli.output import print_json
from reelflow.cli.secret_input import prompt_if_dash
from reelflow.errors import ReelflowError
from reelflow.orchestration import prefect_server

vast_app = typer.Typer(help="vast.ai instances: list, start, stop.", no_args_is_help=True)
err = Console(stderr=True)
out = Console()

BlockName = Annotated[str | None, typer.Option("--name", help="GPU endpoint block to take the key and id from.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


ApiKey = Annotated[str | None, typer.Option(help="vast.ai API key (default: the GPU endpoint's); '-' asks for it "
                                            "hidden.", envvar="VAST_API_KEY", callback=prompt_if_dash)]
ApiUrl = Annotated[str | None, typer.Option(help="vast.ai REST base URL (default: the GPU endpoint's).",
                                            envvar="VAST_API_URL")]
InstanceId = Annotated[int | None, typer.Argument(help="Instance id (default: the GPU endpoint's).")]


def _run_vast(api_key: str | None, api_url: str | None, name: str | None, action: str,
              instance_id: int | None = None, wait_s: float = 0.0) -> dict[str, Any]:
    from reelflow.gpu.vast import vast_action

    if api_key is None or api_url is None:
        prefect_server.ensure_api()
    try:
        return asyncio.run(vast_action(api_key, api_url, name, action, instance_id, wait_s))
    except ReelflowError as exc:
        _fail(str(exc), 1)
        raise


@vast_app.command("list")
def vast_list(api_key: ApiKey = None, api_url: ApiUrl = None, name: BlockName = None,
              as_json: AsJson = False) -> None:
    """Your vast.ai instances: status, GPU, $/hour."""
    result = _run_vast(api_key, api_url, name, "list")
    if as_json:
        print_json(result["instances"])
        return
    table = Table(title="vast.ai instances")
    for column in ("id", "status", "gpu", "$/hour", "label", "uptime min"):
        table.add_column(column)
    for inst in result["instances"]:
        table.add_row(str(inst["id"]), str(inst["actual_status"]), f"{inst['num_gpus'] or 1}x {inst['gpu_name']}",
                      f"{inst['dph_total']:.3f}" if inst["dph_total"] is not None else "-", inst["label"] or "-",
                      f"{inst['uptime_mins']:.0f}" if inst["uptime_mins"] is not None else "-")
    out.print(table)


@vast_app.command("start")
def vast_start(instance_id: InstanceId = None, api_key: ApiKey = None, api_url: ApiUrl = None,
               name: BlockName = None,
               wait: Annotated[bool, typer.Option("--wait", help="Wait until running, then find its URLs.")] = False,
               timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 900.0) -> None:
    """Start an instance (GPU billing resumes)."""
    result = _run_vast(api_key, api_url, name, "start", instance_id, timeout if wait else 0.0)
    out.print(result["message"])


@vast_app.command("stop")
def vast_stop(instance_id: InstanceId = None, api_key: ApiKey = None, api_url: ApiUrl = None,
              name: BlockName = None) -> None:
    """Stop an instance: GPU billing stops, storage keeps billing until you destroy it on vast.ai."""
    result = _run_vast(api_key, api_url, name, "stop", instance_id)
    out.print(result["message"])
