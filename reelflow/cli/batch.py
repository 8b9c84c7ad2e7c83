"""``reelflow batch``: many videos from a folder or a CSV/JSONL file (or a pipeline run per row, with
``--pipeline``), with a progress bar and a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reelflow.cli import logs
from reelflow.cli.output import print_json, short_id
from reelflow.core.batch import ItemResult
from reelflow.core.money import usd_text
from reelflow.errors import ReelflowError, SpecError
from reelflow.orchestration import prefect_server

app = typer.Typer()
err = Console(stderr=True)
out = Console()
COLOURS = {"completed": "green", "failed": "red", "rejected": "red", "cancelled": "yellow"}


@app.command()
def batch(
    source: Annotated[str, typer.Argument(help="A folder of images, or a .csv / .jsonl file of specs.")],
    model: Annotated[str | None, typer.Option(help="Video model for items that do not name one.")] = None,
    prompt: Annotated[list[str] | None, typer.Option(help="Prompt; repeat for images × prompts.")] = None,
    duration: Annotated[float | None, typer.Option(help="Seconds of video.")] = None,
    fps: Annotated[int | None, typer.Option(help="Frames per second.")] = None,
    resolution: Annotated[str | None, typer.Option(help="480p, 720p, 1080p or WIDTHxHEIGHT.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for repeatable results.")] = None,
    storage: Annotated[str | None, typer.Option(help="auto, local or r2.")] = None,
    batch_id: Annotated[str | None, typer.Option(help="Batch id (default: a hash of the items).")] = None,
    via: Annotated[str, typer.Option(help="auto (workers if online), deployment or local.")] = "auto",
    max_in_flight: Annotated[int, typer.Option(min=1, help="Items queued or running at once.")] = 8,
    force: Annotated[bool, typer.Option("--force", help="Render again even items that finished.")] = False,
    submit: Annotated[bool, typer.Option("--submit", help="Hand the batch to the batch-pipeline deployment "
                                         "and return at once.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    pipeline: Annotated[Path | None, typer.Option(help="A pipeline definition (.yaml/.json): run it once per row "
                                                  "of SOURCE (a .csv or .jsonl file), the columns its inputs.")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show Prefect's log lines too.")] = False,
) -> None:
    """Render every image × prompt (or every row) as its own pipeline run; finished items are reused."""
    from reelflow.core import batch as batches

    logs.configure(verbose=verbose)

    if via not in ("auto", "deployment", "local"):
        raise typer.BadParameter("choose auto, deployment or local", param_hint="--via")
    given = {"model": model, "duration": duration, "fps": fps, "resolution": resolution, "seed": seed,
             "storage": storage}
    defaults = {k: v for k, v in given.items() if v is not None}
    resolved = str(Path(source).expanduser().resolve())
    definition = None
    try:
        if pipeline is not None:
            definition = _checked_pipeline(pipeline, {**defaults, **({"prompt": prompt} if prompt else {})})
            items = batches.build_pipeline_items(resolved, definition)
            batch_id = batch_id or batches.pipeline_batch_id(definition, items)
        else:
            items = batches.build_items(resolved, prompts=prompt, defaults=defaults)
            batch_id = batch_id or batches.batch_id_for(items)
    except SpecError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    params = {"source": resolved, "prompts": prompt, "defaults": defaults, "batch_id": batch_id, "via": via,
              "max_in_flight": max_in_flight, "force": force}
    if definition is not None:
        params.update(defaults={}, prompts=None,
                      pipeline=definition.model_dump(mode="json", exclude_defaults=True))
    prefect_server.ensure_api()
    if submit:
        flow_run_id = asyncio.run(_submit(params))
        if as_json:
            print_json({"batch_id": batch_id, "items": len(items), "prefect_flow_run_id": flow_run_id,
                        "prefect_url": prefect_server.ui_url(flow_run_id)})
        else:
            out.print(f"batch {batch_id}: {len(items)} items submitted as flow run {flow_run_id}")
            if link := prefect_server.ui_url(flow_run_id):
                out.print(f"  prefect: {link}")
        return
    summary = _run(params, len(items), as_json)
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary)
    if summary["counts"].get("completed", 0) != summary["total"]:
        raise typer.Exit(1)


def _checked_pipeline(path: Path, defaults: dict[str, Any]) -> Any:
    """The definition, checked whole before any row is recorded; the video options do not apply to it."""
    from reelflow.core.pipeline.check import check_definition
    from reelflow.core.pipeline.load import load_definition

    if defaults:
        raise SpecError("--pipeline", f"--{next(iter(defaults))} is for video batches; a pipeline's rows give "
                        "its inputs and its steps name their own models and params")
    definition = load_definition(path)
    check_definition(definition)
    return definition


async def _submit(params: dict[str, Any]) -> str:
    from prefect.deployments import run_deployment

    from reelflow.orchestration.deployments import BATCH_DEPLOYMENT

    flow_run = await run_deployment(BATCH_DEPLOYMENT, parameters={**params, "via": "deployment"}, timeout=0)
    return str(flow_run.id)


def _run(params: dict[str, Any], total: int, quiet: bool) -> dict[str, Any]:
    from flows.batch_pipeline import batch_pipeline
    from reelflow.core import batch as batches

    logs.quiet_prefect_console()
    with Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=err, disable=quiet) as progress:
        bar = progress.add_task("", total=total)
        ended: set[str] = set()

        def show(batch_id: str, result: ItemResult, finished: int, count: int) -> None:
            if batch_id != params["batch_id"]:
                return
            ended.add(result.item)
            progress.update(bar, completed=len(ended), description=f"{result.item[:40]} {result.status}")
            if result.status != "completed":
                progress.console.print(f"  [red]{escape(result.item)}: {result.status}[/] {escape(result.error or '')}")

        async def go() -> tuple[str, Any]:
            state = await batch_pipeline(**params, return_state=True)
            return f"{state.name}: {state.message}", await state.aresult(raise_on_failure=False)

        unsubscribe = batches.subscribe(show)
        try:
            outcome, summary = asyncio.run(go())
        finally:
            unsubscribe()
        if isinstance(summary, dict):
            progress.update(bar, completed=summary["total"], description="")
            progress.refresh()
    if not isinstance(summary, dict):
        raise ReelflowError(f"the batch flow ended {outcome} ({summary})")
    return summary


def _print_summary(summary: dict[str, Any]) -> None:
    """One line per item (status, run id, cost), its video path or error on the next line, never cut short:
    a path is printed whole, so the terminal wraps it and it can still be copied."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    out.print(f"[bold]batch {summary['batch_id']}[/]: {counts}; cost {usd_text(summary['cost_usd'])}", soft_wrap=True)
    for row in summary["items"]:
        colour = COLOURS.get(row["status"], "cyan")
        status = row["status"] + (" (cached)" if row["cached"] else "")
        cost = f"${row['cost_usd']:.4f}" if row["cost_usd"] is not None else "-"
        run = f"run {short_id(row['run_id'])}" if row["run_id"] else "no run"
        out.print(f"  {escape(row['item'])}  [{colour}]{status}[/]  {run}  {cost}", soft_wrap=True)
        if row["video"] or row["error"]:
            out.print(f"    {escape(row['video'] or row['error'])}", soft_wrap=True)
