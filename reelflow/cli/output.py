"""How runs and models look on the terminal and in ``--json``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from reelflow.errors import AmbiguousRunIdError
from reelflow.orchestration.prefect_server import ui_url
from reelflow.store import repo
from reelflow.store.views import EventView, RunView, StepView

SHORT_ID = 12


def short_id(run_id: str) -> str:
    """The run's first 12 characters when they name it alone (so they can be pasted back), else the full id."""
    prefix = run_id[:SHORT_ID]
    try:
        return prefix if repo.resolve_run_id(prefix) == run_id else run_id
    except (AmbiguousRunIdError, LookupError):
        return run_id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def step_json(step: StepView) -> dict[str, Any]:
    return {"name": step.name, "backend": step.backend, "status": step.status,
            "provider_job_id": step.provider_job_id, "attempts": step.attempts, "started_at": _iso(step.started_at),
            "finished_at": _iso(step.finished_at), "duration_s": _seconds(step.started_at, step.finished_at),
            "gpu_seconds": step.gpu_seconds, "cost_usd": step.cost_usd, "error": step.error}


def event_json(event: EventView) -> dict[str, Any]:
    return {"id": event.id, "at": event.created_at.isoformat(), "kind": event.kind, "step": event.step,
            "message": event.message, "progress": event.progress}


def run_json(run: RunView) -> dict[str, Any]:
    outputs = sorted(run.outputs, key=lambda o: o.role == "input")
    return {
        "run_id": run.run_id,
        "status": run.status,
        "cached": run.cached,
        "model": run.model,
        "backend": run.backend,
        "seed": run.spec.get("seed"),
        "batch_id": run.batch_id,
        "outputs": [o.model_dump(mode="json", exclude_none=True) for o in outputs],
        "cost_usd": run.cost_usd,
        "error": run.error,
        "prefect_flow_run_id": run.prefect_flow_run_id,
        "prefect_url": ui_url(run.prefect_flow_run_id),
        "created_at": run.created_at.isoformat(),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": _seconds(run.started_at, run.finished_at),
        "steps": [step_json(step) for step in run.steps],
    }


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_run(console: Console, run: RunView, *, link: bool = True) -> None:
    colour = {"completed": "green", "failed": "red", "cancelled": "yellow"}.get(run.status, "cyan")
    cached = " (from cache, nothing rendered)" if run.cached else ""
    console.print(f"[bold]run {run.run_id}[/] [{colour}]{run.status}[/]{cached}  model {run.model}")
    for output in run.outputs:
        if output.role != "input":
            where = output.path or output.url
            size = f"{output.width}x{output.height}" if output.width else ""
            console.print(f"  {output.role}: {where}  {output.content_type} {size} {output.bytes} bytes")
    for step in run.steps:
        took = _seconds(step.started_at, step.finished_at)
        facts = [f"{took:.1f} s" if took is not None else None,
                 f"GPU {step.gpu_seconds:.1f} s" if step.gpu_seconds is not None else None,
                 f"job {step.provider_job_id}" if step.provider_job_id else None,
                 f"${step.cost_usd:.4f}" if step.cost_usd is not None else None]
        console.print(f"  step {step.name} ({step.backend}) {step.status}  "
                      + "  ".join(f for f in facts if f), soft_wrap=True)
    if run.cost_usd is not None:
        console.print(f"  cost: ${run.cost_usd:.4f}")
    if run.error:
        console.print(f"  [red]error:[/] {run.error}")
    if link and (url := ui_url(run.prefect_flow_run_id)):
        console.print(f"  prefect: {url}", soft_wrap=True)


def print_events(console: Console, events: list[EventView]) -> None:
    for event in events:
        progress = f" {event.progress:.0%}" if event.progress is not None else ""
        where = f" [{event.step}]" if event.step else ""
        console.print(f"  {event.created_at:%H:%M:%S} {event.kind}{where}{progress} {event.message}",
                      soft_wrap=True, markup=False)


def runs_table(runs: list[RunView], total: int, offset: int = 0) -> Table:
    shown = f"{offset + 1}-{offset + len(runs)}" if runs else "none"
    table = Table(title=f"runs ({shown} of {total})", box=box.SIMPLE_HEAD)
    table.add_column("run id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("cost", no_wrap=True)
    table.add_column("video / error", overflow="fold")
    for run in runs:
        video = run.video
        table.add_row(short_id(run.run_id), run.status, run.model, run.created_at.strftime("%m-%d %H:%M"),
                      f"${run.cost_usd:.4f}" if run.cost_usd is not None else "-",
                      (video.path or video.url or "") if video else (run.error or ""))
    return table
