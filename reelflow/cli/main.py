"""The ``reelflow`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelflow.cli import batch, gpu, resume, serve, stack, storage
from reelflow.cli.output import print_json, print_run, run_json, runs_table
from reelflow.errors import ModelUnavailableError, ReelflowError, RunNotFoundError, SpecError
from reelflow.orchestration import prefect_server
from reelflow.settings import prefect_api_url

app = typer.Typer(help="reelflow: images and prompts to videos, orchestrated by Prefect.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
server_app = typer.Typer(help="The background Prefect server reelflow starts for local use.")
app.add_typer(server_app, name="server")
app.add_typer(stack.app)
app.add_typer(batch.app)
app.add_typer(gpu.app)
app.add_typer(storage.app)
app.command("serve")(serve.serve)
app.command("resume")(resume.resume)
err = Console(stderr=True)
out = Console()

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


@app.callback()
def _setup() -> None:
    prefect_server.prepare_environment()


def _reject(exc: ReelflowError, as_json: bool) -> None:
    field = getattr(exc, "field", None)
    if as_json:
        print_json({"run_id": None, "status": "rejected", "cached": False, "outputs": [], "cost_usd": None,
                    "error": str(exc), "field": field})
    else:
        err.print(f"[red]error:[/] {exc}")
    raise typer.Exit(EXIT_BAD_INPUT)


def _execute(spec: dict[str, Any], force: bool, as_json: bool) -> None:
    from reelflow.runs.prepare import prepare_run

    try:
        prepared = prepare_run(spec, force=force)
    except (SpecError, ModelUnavailableError) as exc:
        _reject(exc, as_json)
    run = prepared.run if prepared.cached else _render(prepared.run.run_id, prepared.run.spec, force, as_json)
    if as_json:
        print_json(run_json(run))
    else:
        print_run(out, run)
    code = 0 if run.status == "completed" else EXIT_FAILED
    if not prepared.cached:
        _exit_after_flow(code)
    raise typer.Exit(code)


def _exit_after_flow(code: int) -> None:
    """Send Prefect's queued logs and events now, then exit without the ~0.5 s of interpreter and
    Prefect thread shutdown that would otherwise follow every run."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _render(run_id: str, spec: dict[str, Any], force: bool, as_json: bool):
    from reelflow.runs import events
    from reelflow.runs.launcher import execute_here
    from reelflow.store import repo

    if not prefect_server.running_server() and prefect_api_url() is None:
        err.print("starting the local Prefect server (first run only; `reelflow server stop` ends it)...")

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=err, disable=as_json, transient=True) as progress:
        bar = progress.add_task(f"run {run_id[:12]}", total=1.0)

        def show(event_run: str, kind: str, message: str, fraction: float | None) -> None:
            if event_run != run_id:
                return
            if fraction is not None:
                progress.update(bar, completed=fraction, description=message[:60])
            elif kind == "step" and not as_json:
                progress.console.print(f"  {message}")

        unsubscribe = events.subscribe(show)
        try:
            asyncio.run(execute_here(run_id, spec, force=force))
        finally:
            unsubscribe()
    return repo.get_run(run_id)


@app.command()
def run(
    model: Annotated[str, typer.Option(help="Video model id (see `reelflow models`).")],
    image: Annotated[str | None, typer.Option(help="Input image: a file path or an http(s) URL.")] = None,
    prompt: Annotated[str, typer.Option(help="What should happen in the video.")] = "",
    image_prompt: Annotated[str | None, typer.Option(help="Generate the input image from this prompt.")] = None,
    image_model: Annotated[str, typer.Option(help="Text-to-image model for --image-prompt.")] = "flux-schnell",
    negative_prompt: Annotated[str | None, typer.Option(help="What to avoid.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of video.")] = None,
    frames: Annotated[int | None, typer.Option(help="Frame count (instead of --duration).")] = None,
    fps: Annotated[int | None, typer.Option(help="Frames per second.")] = None,
    resolution: Annotated[str | None, typer.Option(help="480p, 720p, 1080p or WIDTHxHEIGHT.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable results.")] = None,
    storage: Annotated[str, typer.Option(help="auto, local or r2.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Render again even if an identical run finished.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Make a video from an image (or a generated one) and print where it is."""
    spec = {"model": model, "image": image, "image_prompt": image_prompt, "image_model": image_model,
            "prompt": prompt, "negative_prompt": negative_prompt, "duration": duration, "frames": frames,
            "fps": fps, "resolution": resolution, "seed": seed, "storage": storage}
    _execute({k: v for k, v in spec.items() if v is not None}, force, as_json)


@app.command()
def demo(
    force: Annotated[bool, typer.Option("--force", help="Render again even if done before.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
) -> None:
    """Render the bundled sample image with the offline CPU model (no keys, no network)."""
    sample = resources.files("reelflow").joinpath("assets/sample.jpg")
    spec = {"model": "local-kenburns", "image": str(Path(str(sample))), "prompt": "a slow drift over the hills",
            "duration": 3.0, "fps": 24, "resolution": "480p", "seed": 7}
    _execute(spec, force, as_json)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    status: Annotated[str | None, typer.Option(help="queued, running, completed, failed or cancelled.")] = None,
    model: Annotated[str | None, typer.Option(help="Only runs of this model.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List recent runs, newest first."""
    from reelflow.store import repo

    found, total = repo.list_runs(limit=limit, offset=offset, status=status, model=model)
    if as_json:
        print_json({"total": total, "runs": [run_json(r) for r in found]})
    else:
        out.print(runs_table(found, total))


@app.command()
def status(run_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one run: status, outputs, cost, error and its Prefect link."""
    from reelflow.store import repo

    try:
        found = repo.get_run(run_id)
    except RunNotFoundError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        print_json(run_json(found))
    else:
        print_run(out, found)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the model catalog and whether each model can run here."""
    from reelflow.core.availability import availability
    from reelflow.core.catalog import load_catalog

    entries = []
    for entry in load_catalog().models:
        found = availability(entry)
        entries.append({**entry.model_dump(mode="json"), "price_text": entry.price.text(),
                        "available": found.available, "missing": found.missing})
    if as_json:
        print_json(entries)
        return
    table = Table(title="models")
    for column in ("id", "kind", "backend", "available", "price", "notes"):
        table.add_column(column)
    for e in entries:
        table.add_row(e["id"], e["kind"], e["backend"], "yes" if e["available"] else "no", e["price_text"],
                      "; ".join(e["missing"]) or ("not AI: " if not e["ai"] else "") + e["speed_hint"])
    out.print(table)


@server_app.command("start")
def server_start() -> None:
    """Start the background Prefect server (or report the one running)."""
    server = prefect_server.running_server() or prefect_server.start_server()
    out.print(f"Prefect server running: {server.url} (pid {server.pid})")
    for line in prefect_server.connect_hints(server):
        out.print(line, soft_wrap=True)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the background Prefect server reelflow started."""
    out.print("stopped" if prefect_server.stop_server() else "no reelflow Prefect server was running")


@server_app.command("status")
def server_status() -> None:
    """Where the background Prefect server and its UI are, and how other shells connect to it."""
    server = prefect_server.running_server()
    if not server:
        out.print("not running")
        raise typer.Exit(1)
    out.print(f"running: {server.url} (pid {server.pid})")
    for line in prefect_server.connect_hints(server):
        out.print(line, soft_wrap=True)


def main() -> None:
    try:
        app()
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {exc}")
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
