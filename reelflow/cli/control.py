"""``reelflow cancel``, ``reelflow retry`` and ``reelflow open``: act on a recorded run, named by its id or a unique
prefix of it (six characters or more), from any process."""

from __future__ import annotations

import asyncio
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from reelflow.cli.output import print_json, print_run, run_json
from reelflow.errors import AmbiguousRunIdError, RunNotFoundError
from reelflow.orchestration.prefect_server import ensure_api, ui_url
from reelflow.store import repo
from reelflow.store.views import RunView

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
SHOWN = frozenset({"cancel", "log"})
err = Console(stderr=True)
out = Console()
RunId = Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it (at least 6 characters).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _resolve(given: str, as_json: bool) -> RunView:
    try:
        return repo.get_run(repo.resolve_run_id(given))
    except (RunNotFoundError, AmbiguousRunIdError) as exc:
        _fail(given, str(exc), as_json, EXIT_BAD_INPUT)


def _fail(run_id: str, message: str, as_json: bool, code: int, status: str = "rejected") -> None:
    if as_json:
        print_json({"run_id": run_id, "status": status, "error": message})
    else:
        err.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


async def _cancel_and_report(run_id: str, wait_s: float, as_json: bool) -> RunView:
    """Cancel, printing the run's cancel and job log lines (e.g. "interrupt sent") as the executor writes them."""
    from reelflow.runs.cancel import cancel_run

    seen = repo.latest_event_id()
    cancelling = asyncio.create_task(cancel_run(run_id, wait_s))
    while True:
        done = cancelling.done()
        for event in repo.events_after(run_id, seen):
            seen = event.id
            if event.kind in SHOWN and not as_json:
                err.print(f"  {event.message}")
        if done:
            return cancelling.result()
        await asyncio.wait({cancelling}, timeout=0.2)


def cancel(run_id: RunId, timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for it to end.")] = 60,
           as_json: AsJson = False) -> None:
    """Cancel a queued or running run wherever it executes: the provider job is stopped, the slot freed.

    Exits 0 once the run is cancelled; 1 if it had already finished or did not stop within --timeout.
    """
    run = _resolve(run_id, as_json)
    if run.status in repo.FINISHED:
        _fail(run.run_id, f"run {run.run_id} had already finished: {run.status}", as_json, EXIT_FAILED, run.status)
    if not as_json:
        err.print(f"cancelling run {run.run_id}...")
    ended = asyncio.run(_cancel_and_report(run.run_id, timeout, as_json))
    if as_json:
        print_json(run_json(ended))
    else:
        print_run(out, ended)
    if ended.status != "cancelled":
        if not as_json:
            err.print(f"[red]not cancelled:[/] the run is {ended.status}" +
                      (f" after {timeout:g} s; its process did not stop it" if ended.status == "running" else ""))
        raise typer.Exit(EXIT_FAILED)


def retry(run_id: RunId, as_json: AsJson = False) -> None:
    """Run a failed run again (same id, a new flow run, paid provider jobs resumed) or a cancelled one afresh
    (a new run), on a worker when one is online, else here; waits for it and exits 0 when it completed."""
    from reelflow import api
    from reelflow.runs import retry as retrying
    from reelflow.runs.launcher import Launcher

    run = _resolve(run_id, as_json)
    if (why := retrying.not_retryable(run)) is not None:
        _fail(run.run_id, why, as_json, EXIT_BAD_INPUT)
    launcher = Launcher(max_parallel=1, via="auto")
    started = retrying.retry_run(run, launcher)
    if not as_json:
        err.print(f"retrying as run {started.run_id}...")
    ended = api.wait(started.run_id)
    launcher.shutdown()
    if as_json:
        print_json(run_json(ended))
    else:
        print_run(out, ended)
    raise typer.Exit(0 if ended.status == "completed" else EXIT_FAILED)


def open_run(run_id: RunId,
             prefect: Annotated[bool, typer.Option("--prefect", help="Open the Prefect page even if a video exists.")]
             = False) -> None:
    """Open the run's video (a local file or its URL), or its Prefect page when it has none (or with --prefect)."""
    run = _resolve(run_id, False)
    video = None if prefect else run.video
    if video is None and run.prefect_flow_run_id:
        ensure_api()
    target = (Path(video.path).resolve().as_uri() if video.path else video.url) if video else \
        ui_url(run.prefect_flow_run_id)
    if not target:
        _fail(run.run_id, f"run {run.run_id} ({run.status}) has no video and no Prefect flow run yet", False,
              EXIT_FAILED)
    print(target)
    webbrowser.open(target)
