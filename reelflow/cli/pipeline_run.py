"""``reelflow pipeline run|resume|show``: execute a pipeline run here with a live view of its graph, continue one,
show one (``--json``: ``reelflow run --json``'s object plus ``steps`` and the final ``outputs``)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from reelflow.core.money import usd_text
from reelflow.errors import (
    AmbiguousRunIdError,
    ModelUnavailableError,
    ReelflowError,
    RunNotFoundError,
    RunNotResumableError,
    SpecError,
)
from reelflow.store.views import RunView

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2
VIEW_REFRESH_S = 0.5
STATE_STYLE = {"completed": "green", "failed": "red", "cancelled": "yellow", "skipped": "dim", "running": "cyan",
               "waiting": "magenta", "pending": "dim"}
err = Console(stderr=True)
out = Console()

Inputs = Annotated[list[str] | None, typer.Option("--input", "-i", help=(
    "KEY=VALUE for a pipeline input (repeatable). texts: a JSON list or a|b|c; image: a path or URL."))]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead.")]


def parse_inputs(given: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for entry in given or []:
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            err.print(f"[red]error:[/] --input {escape(entry)}: expected KEY=VALUE", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT)
        values[name.strip()] = value
    return values


def pipeline_json(run: RunView) -> dict[str, Any]:
    from reelflow.cli.output import run_json
    from reelflow.runs.pipelines import describe_steps, final_outputs

    steps = describe_steps(run)
    return {**run_json(run), "kind": "pipeline" if "steps" in run.spec else "video",
            "steps": steps, "final_outputs": final_outputs(run, steps)}


def graph_view(run: RunView) -> Tree:
    """The run as a tree: each step with its state, progress of its items, and cost."""
    from reelflow.runs.pipelines import describe_steps

    style = STATE_STYLE.get(run.status, "cyan")
    tree = Tree(Text.assemble(("pipeline ", "bold"), (run.model.removeprefix("pipeline:"), "bold"), "  ",
                              (run.status, style), f"  {usd_text(run.cost_usd) if run.status != 'running' else ''}"))
    for step in describe_steps(run):
        items = step["items"]
        done = sum(1 for i in items if i["status"] == "completed")
        reused = sum(1 for i in items if i.get("reused_from"))
        label = Text.assemble((f"{step['id']}", "bold"), f" ({step['kind']}", f" {step['model']})" if step["model"]
                              else ")", "  ", (step["status"], STATE_STYLE.get(step["status"], "cyan")))
        if len(items) > 1:
            label.append(f"  {done}/{len(items)}")
        if reused:
            label.append(f"  {reused} reused", style="dim")
        if step["status"] == "completed":
            label.append(f"  {usd_text(step['cost_usd'])}", style="dim")
        if step["error"]:
            label.append(f"  {step['error'][:100]}", style="red")
        node = tree.add(label)
        if len(items) > 1:
            for item in items:
                node.add(Text.assemble(item["name"], "  ", (item["status"], STATE_STYLE.get(item["status"], "cyan"))))
    return tree


def _render(run_id: str, force: bool, as_json: bool) -> RunView:
    from reelflow.cli import logs
    from reelflow.runs.pipelines import execute_pipeline_here
    from reelflow.store import repo

    logs.quiet_prefect_console()
    stop = threading.Event()

    def refresh(live: Live) -> None:
        while not stop.wait(VIEW_REFRESH_S):
            live.update(graph_view(repo.get_run(run_id)))

    with Live(Group(graph_view(repo.get_run(run_id))), console=err, transient=False,
              auto_refresh=False, redirect_stdout=False) if not as_json else _NoLive() as live:
        painter = threading.Thread(target=refresh, args=(live,), daemon=True) if not as_json else None
        if painter:
            painter.start()
        try:
            asyncio.run(execute_pipeline_here(run_id, force=force))
        except KeyboardInterrupt:
            pass
        except ReelflowError:
            pass  # recorded on the run
        finally:
            stop.set()
            if painter:
                painter.join()
                live.update(graph_view(repo.get_run(run_id)), refresh=True)
    if not as_json:
        err.print()
    return repo.get_run(run_id)


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def update(self, *_: object, **__: object) -> None:
        return None


def _resolve(given: str, as_json: bool) -> str:
    from reelflow.store import repo

    try:
        return repo.resolve_run_id(given)
    except (RunNotFoundError, AmbiguousRunIdError) as exc:
        _reject(exc, as_json)
        raise


def _exit_after_flow(code: int) -> None:
    """Send Prefect's queued logs and events, then exit without waiting on Prefect's threads (as ``reelflow run``)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _finish(run: RunView, as_json: bool, *, rendered: bool) -> None:
    from reelflow.cli.output import short_id

    code = 0 if run.status == "completed" else EXIT_FAILED
    if as_json:
        from reelflow.cli.output import print_json

        print_json(pipeline_json(run))
    else:
        if not rendered:
            err.print(graph_view(run))
        note = " (from cache, nothing rendered)" if run.cached else ""
        out.print(f"run {short_id(run.run_id)} {run.status}{note}; cost {usd_text(run.cost_usd)}", soft_wrap=True)
        if run.error:
            out.print(f"[red]{escape(run.error)}[/]", soft_wrap=True)
    if rendered:
        _exit_after_flow(code)
    raise typer.Exit(code)


def _reject(exc: ReelflowError, as_json: bool) -> None:
    from reelflow.cli.output import print_json

    if as_json:
        print_json({"run_id": None, "status": "rejected", "cached": False, "error": str(exc),
                    "field": getattr(exc, "field", None), "step": getattr(exc, "step", None)})
    else:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def run(file: Annotated[Path, typer.Argument(help="The pipeline definition (.yaml, .yml or .json).")],
        inputs: Inputs = None, as_json: AsJson = False,
        force: Annotated[bool, typer.Option("--force", help="Render every step anew (no reuse).")] = False) -> None:
    """Check, record and execute a pipeline run here, showing its graph live."""
    from reelflow.runs.pipelines import prepare_pipeline_run

    try:
        prepared = prepare_pipeline_run(str(file), parse_inputs(inputs), force=force)
    except (SpecError, ModelUnavailableError) as exc:
        _reject(exc, as_json)
    if prepared.cached:
        _finish(prepared.run, as_json, rendered=False)
    if not as_json:
        _print_estimate(file, parse_inputs(inputs))
    _finish(_render(prepared.run.run_id, force, as_json), as_json, rendered=True)


def _print_estimate(file: Path, inputs: dict[str, str]) -> None:
    """The price per step and the total, before anything is paid (as ``reelflow pipeline estimate`` shows it)."""
    from reelflow.cli.pipeline import print_estimate
    from reelflow.core.pipeline.estimate import estimate
    from reelflow.core.pipeline.load import load_definition

    definition = load_definition(str(file))
    print_estimate(definition.name, estimate(definition, inputs))


def resume(run_id: Annotated[str, typer.Argument(help="The run id (or a unique prefix of at least 6).")],
           as_json: AsJson = False) -> None:
    """Continue a pipeline run whose process died or that failed: only steps that did not complete run again."""
    from reelflow.runs.pipelines import aresume_pipeline

    full = _resolve(run_id, as_json)
    try:
        run = asyncio.run(aresume_pipeline(full))
    except RunNotResumableError as exc:
        _reject(exc, as_json)
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(EXIT_FAILED) from None
    _finish(run, as_json, rendered=True)


def show(run_id: Annotated[str, typer.Argument(help="The run id (or a unique prefix of at least 6).")],
         as_json: AsJson = False) -> None:
    """Show a run's graph: each step's state, outputs and cost (a one-video run as a one-step pipeline)."""
    from reelflow.store import repo

    run = repo.get_run(_resolve(run_id, as_json))
    if as_json:
        from reelflow.cli.output import print_json

        print_json(pipeline_json(run))
        return
    out.print(graph_view(run))


def register(pipeline_app: typer.Typer) -> None:
    for name, command in (("run", run), ("resume", resume), ("show", show)):
        pipeline_app.command(name)(command)
