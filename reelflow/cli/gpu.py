"""``reelflow gpu set|show|discover|check`` and ``reelflow vast list|start|stop``: your own GPU endpoint.

The endpoint is the Prefect Block ``GpuEndpoint`` (saved through the Prefect API, so it survives restarts and
can be edited in the Prefect UI); secrets are never printed.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reelflow.cli.output import print_json
from reelflow.cli.secret_input import prompt_if_dash
from reelflow.cli.vast import vast_app
from reelflow.cli.workflows import workflows_app
from reelflow.errors import ReelflowError
from reelflow.orchestration import prefect_server

app = typer.Typer()
gpu_app = typer.Typer(help="Your own GPU endpoint (ComfyUI / SwarmUI, local or on vast.ai).", no_args_is_help=True)
app.add_typer(gpu_app, name="gpu")
app.add_typer(vast_app, name="vast")
app.add_typer(workflows_app, name="workflows")
err = Console(stderr=True)
out = Console()

BlockName = Annotated[str | None, typer.Option("--name", help="Block name (default: REELFLOW_GPU_BLOCK or 'default').")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OPTION_FIELDS = {
    "provider": "provider", "comfyui_url": "comfyui_url", "swarmui_url": "swarmui_url",
    "vastai_instance_id": "vastai_instance_id", "vastai_api_key": "vastai_api_key", "vastai_api_url": "vastai_api_url",
    "portal_token": "portal_token", "tunnel_cookie": "tunnel_auth_cookie", "concurrency": "comfyui_concurrency",
    "deadline_minutes": "job_deadline_minutes", "allow_resubmit_lost_jobs": "allow_resubmit_lost_jobs",
    "idle_stop_minutes": "idle_stop_minutes", "fallback_model": "fallback_model",
}


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _show(name: str, gpu: Any, as_json: bool) -> None:
    masked = {"block": name, **gpu.masked()}
    if as_json:
        print_json(masked)
        return
    table = Table(title=f"GPU endpoint '{name}' (Prefect block gpu-endpoint/{name})", show_header=False)
    for key, value in masked.items():
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


def _updates(options: dict[str, Any], tunnel_header: str | None) -> dict[str, Any]:
    """Options given on the command line -> block fields; an empty string clears a field."""
    values = {OPTION_FIELDS[key]: (None if value == "" else value) for key, value in options.items()
              if value is not None}
    if tunnel_header is not None:
        header_name, sep, header_value = tunnel_header.partition(":" if ":" in tunnel_header else "=")
        if tunnel_header and not sep:
            _fail("--tunnel-header must look like 'Name: value' (or '' to remove it)")
        values["tunnel_auth_header_name"] = header_name.strip() or None
        values["tunnel_auth_header_value"] = header_value.strip() or None
    return values


async def _set(name: str | None, values: dict[str, Any]) -> tuple[str, Any]:
    from blocks.gpu_endpoint import GpuEndpoint
    from reelflow.gpu.endpoint import block_name, find_endpoint, save_endpoint

    current = await find_endpoint(name)
    merged = {field: getattr(current, field) for field in GpuEndpoint.model_fields} if current else {}
    if current is None and "provider" not in values and (values.get("comfyui_url") or values.get("swarmui_url")):
        merged["provider"] = "local"
    merged.update(values)
    gpu = GpuEndpoint(**{k: v for k, v in merged.items() if v is not None})
    await save_endpoint(gpu, name)
    return block_name(name), gpu


@gpu_app.command("set")
def gpu_set(
    name: BlockName = None,
    provider: Annotated[str | None, typer.Option(help="none, local or vastai.")] = None,
    comfyui_url: Annotated[str | None, typer.Option(help="ComfyUI base URL (tunnel or direct port).")] = None,
    swarmui_url: Annotated[str | None, typer.Option(help="SwarmUI base URL.")] = None,
    vastai_instance_id: Annotated[int | None, typer.Option(help="vast.ai instance id.")] = None,
    vastai_api_key: Annotated[str | None, typer.Option(
        help="vast.ai API key; '-' asks for it hidden.", envvar="VAST_API_KEY", callback=prompt_if_dash)] = None,
    vastai_api_url: Annotated[str | None, typer.Option(help="vast.ai REST base URL.")] = None,
    portal_token: Annotated[str | None, typer.Option(
        help="The instance's WEB_PASSWORD (Bearer token); '-' asks for it hidden.", envvar="REELFLOW_PORTAL_TOKEN",
        callback=prompt_if_dash)] = None,
    tunnel_header: Annotated[str | None, typer.Option(
        help="Extra auth header 'Name: value'; '-' asks for it hidden.", envvar="REELFLOW_TUNNEL_HEADER",
        callback=prompt_if_dash)] = None,
    tunnel_cookie: Annotated[str | None, typer.Option(
        help="Auth cookie 'name=value'; '-' asks for it hidden.", envvar="REELFLOW_TUNNEL_COOKIE",
        callback=prompt_if_dash)] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs at once on this GPU (default 1).")] = None,
    deadline_minutes: Annotated[int | None, typer.Option(help="Give up on one job after this (default 30).")] = None,
    allow_resubmit_lost_jobs: Annotated[bool | None, typer.Option(
        "--allow-resubmit-lost-jobs/--no-allow-resubmit-lost-jobs", help="Resubmit jobs the server lost.")] = None,
    idle_stop_minutes: Annotated[int | None, typer.Option(help="The janitor stops the instance after this.")] = None,
    fallback_model: Annotated[str | None, typer.Option(help="Cloud model if the GPU is down ('' = off).")] = None,
    as_json: AsJson = False,
) -> None:
    """Create or update the GPU endpoint; only the options given change. '' clears an option."""
    options = {k: v for k, v in locals().items() if k in OPTION_FIELDS}
    values = _updates(options, tunnel_header)
    if values.get("fallback_model"):
        from reelflow.core.catalog import load_catalog

        try:
            load_catalog().get(values["fallback_model"], kind="i2v")
        except ReelflowError as exc:
            _fail(str(exc))
    prefect_server.ensure_api()
    try:
        block, gpu = asyncio.run(_set(name, values))
    except ValidationError as exc:
        _fail("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))
    _show(block, gpu, as_json)


@gpu_app.command("show")
def gpu_show(name: BlockName = None, as_json: AsJson = False) -> None:
    """Show the GPU endpoint (secrets as ********)."""
    prefect_server.ensure_api()  # before Prefect is imported: it settles on a server at import
    from reelflow.gpu.endpoint import block_name, find_endpoint

    gpu = asyncio.run(find_endpoint(name))
    if gpu is None:
        _fail(f"no GPU endpoint saved as '{block_name(name)}'; create it with `reelflow gpu set`", 1)
    _show(block_name(name), gpu, as_json)


@gpu_app.command("discover")
def gpu_discover(name: BlockName = None, as_json: AsJson = False) -> None:
    """Find the ComfyUI/SwarmUI URLs of the vast.ai instance (Instance Portal quick tunnels) and save them."""
    prefect_server.ensure_api()
    from reelflow.gpu.setup import discover

    block, _, urls = asyncio.run(discover(name))
    if as_json:
        print_json({"block": block, **urls.model_dump()})
        return
    out.print(f"portal:  {urls.portal_url or '-'}")
    out.print(f"ComfyUI: {urls.comfyui_url or '-'}\nSwarmUI: {urls.swarmui_url or '-'}")
    out.print(f"saved to GPU endpoint '{block}'")


@gpu_app.command("check")
def gpu_check(name: BlockName = None) -> None:
    """Health check and model preflight: lists every missing model file, folder by folder."""
    prefect_server.ensure_api()
    try:
        from reelflow.gpu.setup import check

        asyncio.run(check(name, lambda line: out.print(line, soft_wrap=True)))
    except ReelflowError as exc:
        _fail(str(exc), 1)


@gpu_app.command("janitor")
def gpu_janitor_once(
    idle_minutes: Annotated[int | None, typer.Option(help="Idle minutes before a stop (default: block's).")] = None,
    as_json: AsJson = False,
) -> None:
    """Run the idle janitor once now (the gpu-janitor deployment runs it every 5 minutes)."""
    prefect_server.ensure_api()
    from flows.gpu_janitor import gpu_janitor

    result = asyncio.run(gpu_janitor(idle_minutes=idle_minutes))
    if as_json:
        print_json(result)
    else:
        out.print(f"{result['action']}: {result['reason']}")
