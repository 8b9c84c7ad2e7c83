"""The ``reelflow`` command line."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from reelflow.cli import (
    approve,
    batch,
    control,
    db,
    gpu,
    help_format,
    logs,
    models,
    pipeline_run,
    resume,
    serve,
    stack,
    storage,
)
from reelflow.cli.output import event_json, print_events, print_json, print_run, print_runs, run_json, short_id
from reelflow.cli.pipeline import pipeline_app
from reelflow.errors import AmbiguousRunIdError, ModelUnavailableError, ReelflowError, RunNotFoundError, SpecError
from reelflow.orchestration import prefect_server
from reelflow.settings import prefect_api_url

help_format.flags_without_placeholders()
app = typer.Typer(help="reelflow: images and prompts to videos, orchestrated by Prefect.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
server_app = typer.Typer(help="The background Prefect server reelflow starts for local use.")
app.add_typer(server_app, name="server")
app.add_typer(stack.app)
app.add_typer(batch.app)
app.add_typer(gpu.app)
app.add_typer(storage.app)
app.add_typer(db.app)
pipeline_run.register(pipeline_app)
app.add_typer(pipeline_app)
app.add_typer(models.app, name="models")
app.command("serve")(serve.serve)
app.command("resume")(resume.resume)
app.command("approve")(approve.approve)
for _name, _command in (("cancel", control.cancel), ("retry", control.retry), ("open", control.open_run)):
    app.command(_name)(_command)
err = Console(stderr=True)
out = Console()

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
RUN_STATUSES = ("queued", "running", "waiting", "completed", "failed", "cancelled")
Verbose = Annotated[bool, typer.Option("-v", "--verbose", help="Show Prefect's log lines too.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Prefect's log lines and full tracebacks.")]


@app.callback()
def _setup(verbose: Verbose = False, debug: Debug = False) -> None:
    logs.configure(verbose=verbose, debug=debug)
    prefect_server.prepare_environment()


def resolve_id(given: str) -> str:
    """The full run id for a unique prefix; exit 2 naming the problem (listing the matches) otherwise."""
    from reelflow.store import repo

    try:
        return repo.resolve_run_id(given)
    except (RunNotFoundError, AmbiguousRunIdError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None


def _reject(exc: ReelflowError, as_json: bool) -> None:
    field = getattr(exc, "field", None)
    if as_json:
        print_json({"run_id": None, "status": "rejected", "cached": False, "outputs": [], "cost_usd": None,
                    "error": str(exc), "field": field})
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
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
        print_run(out, run, link=prepared.cached)
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
    shown = short_id(run_id)
    logs.quiet_prefect_console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=err, disable=as_json, transient=True) as progress:
        bar = progress.add_task(f"run {shown}", total=1.0)
        linked = False

        def show(event_run: str, kind: str, message: str, fraction: float | None) -> None:
            nonlocal linked
            if event_run != run_id:
                return
            if not linked and (flow_run_id := repo.get_run(run_id).prefect_flow_run_id):
                linked = True
                if (link := prefect_server.ui_url(flow_run_id)) and not as_json:
                    progress.console.print(f"run {shown} in Prefect: {link}", soft_wrap=True)
            if fraction is not None:
                progress.update(bar, completed=fraction, description=f"run {shown} {message[:40]}")
            elif kind == "step" and not as_json:
                # "<step> failed: <error>": the error is printed once, in the summary below
                progress.console.print(f"  {message.split(': ', 1)[0]}", markup=False)

        unsubscribe = events.subscribe(show)
        interrupted = threading.Event()
        try:
            asyncio.run(_noting_interrupts(execute_here(run_id, spec, force=force), interrupted))
        except KeyboardInterrupt:
            interrupted.set()
        except ReelflowError:
            if logs.Verbosity.debug:
                err.print_exception()
        finally:
            unsubscribe()
        if interrupted.is_set():
            progress.stop()
            _interrupted(run_id, as_json)
    return repo.get_run(run_id)


async def _noting_interrupts(work: Coroutine[Any, Any, None], interrupted: threading.Event) -> None:
    """Run ``work`` under asyncio's own Ctrl-C handling (it cancels the task), noting that Ctrl-C came:
    Prefect's engine may end the cancelled run as Crashed and return instead of raising."""
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        await work
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _interrupted(run_id: str, as_json: bool) -> None:
    from reelflow.store import repo

    found = repo.find_run(run_id)
    shown = short_id(run_id)
    if as_json and found is not None:
        print_json({**run_json(found), "interrupted": True})
    again = ("run the same command again to render it anew" if found and found.status == "cancelled"
             else f"resume it with `reelflow resume {shown}`")
    err.print(f"cancelled: run {shown} stopped at Ctrl-C (recorded as {found.status if found else 'gone'}); "
              f"{again}; `reelflow status {shown}` shows it", soft_wrap=True)
    _exit_after_flow(EXIT_INTERRUPTED)


@app.command()
def run(
    model: Annotated[str, typer.Option(help="Video model id (see `reelflow models`).")],
    image: Annotated[str | None, typer.Option(help="Input image: a file path or an http(s) URL.")] = None,
    prompt: Annotated[str, typer.Option(help="What should happen in the video.")] = "",
    image_prompt: Annotated[str | None, typer.Option(help="Generate the input image from this prompt.")] = None,
    image_model: Annotated[str, typer.Option(help="Text-to-image model for --image-prompt.")] = "flux-schnell",
    end_image: Annotated[str | None, typer.Option(help="Last frame (a file path or an http(s) URL), for models "
                                                      "that take one.")] = None,
    audio: Annotated[bool, typer.Option("--audio", help="Add generated audio (models that can; costs more).")] = False,
    negative_prompt: Annotated[str | None, typer.Option(help="What to avoid.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of video.")] = None,
    frames: Annotated[int | None, typer.Option(help="Frame count (instead of --duration).")] = None,
    fps: Annotated[int | None, typer.Option(help="Frames per second.")] = None,
    resolution: Annotated[str | None, typer.Option(help="480p, 720p, 1080p or WIDTHxHEIGHT.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable results (left out: a new random one, "
                                                 "recorded on the run).")] = None,
    storage: Annotated[str, typer.Option(help="auto, local or r2.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Render again even if an identical run finished.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Make a video from an image (or a generated one; none for a text-to-video model) and print where it is."""
    logs.configure(verbose=verbose, debug=debug)
    spec = {"model": model, "image": image, "image_prompt": image_prompt, "image_model": image_model,
            "end_image": end_image, "audio": audio or None, "prompt": prompt, "negative_prompt": negative_prompt,
            "duration": duration, "frames": frames,
            "fps": fps, "resolution": resolution, "seed": seed, "storage": storage}
    _execute({k: v for k, v in spec.items() if v is not None}, force, as_json)


@app.command()
def demo(
    force: Annotated[bool, typer.Option("--force", help="Render again even if done before.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    verbose: Verbose = False,
    debug: Debug = False,
) -> None:
    """Render the bundled sample image with the offline CPU model (no keys, no network)."""
    sample = resources.files("reelflow").joinpath("assets/sample.jpg")
    spec = {"model": "local-kenburns", "image": str(Path(str(sample))), "prompt": "a slow drift over the hills",
            "duration": 3.0, "fps": 24, "resolution": "480p", "seed": 7}
    logs.configure(verbose=verbose, debug=debug)
    _execute(spec, force, as_json)


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    status: Annotated[str | None, typer.Option(help="queued, running, completed, failed or cancelled.")] = None,
    model: Annotated[str | None, typer.Option(help="Only runs of this model (see `reelflow models`).")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch", help="Only the runs of this batch (batch-...).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List recent runs, newest first."""
    from reelflow.core.catalog import load_catalog
    from reelflow.store import repo

    if status is not None and status not in RUN_STATUSES:
        _bad_filter("--status", status, RUN_STATUSES)
    if model is not None and model not in (ids := [m.id for m in load_catalog().models]):
        _bad_filter("--model", model, ids)
    found, total = repo.list_runs(limit=limit, offset=offset, status=status, model=model, batch_id=batch_id)
    if batch_id is not None and total == 0:
        err.print(f"[red]error:[/] --batch: no runs belong to batch '{batch_id}'; "
                  "`reelflow batch` prints each batch's id (batch-...)")
        raise typer.Exit(EXIT_BAD_INPUT)
    if as_json:
        print_json({"total": total, "runs": [run_json(r) for r in found]})
    else:
        print_runs(out, found, total, offset)


def _bad_filter(option: str, value: str, allowed: tuple[str, ...] | list[str]) -> None:
    err.print(f"[red]error:[/] {option}: '{value}' is not one of: {', '.join(allowed)}", soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def status(
    run_id: Annotated[str, typer.Argument(help="The run id, or a unique prefix of it (6 characters or more).")],
    events: Annotated[bool, typer.Option("--events", help="Also list the run's events (progress, steps).")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one run: status, steps, outputs, cost, error and its Prefect link."""
    from reelflow.store import repo

    found = repo.get_run(resolve_id(run_id))
    happened = repo.events_after(found.run_id, limit=10_000) if events else []
    if as_json:
        print_json({**run_json(found), **({"events": [event_json(e) for e in happened]} if events else {})})
        return
    print_run(out, found)
    if events:
        out.print("events:")
        print_events(out, happened)


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
        if logs.Verbosity.debug:
            err.print_exception()
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
