"""How runs and models look on the terminal and in ``--json``."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.markup import escape

from reelflow.core.money import usd_json, usd_number, usd_text
from reelflow.errors import AmbiguousRunIdError
from reelflow.orchestration.prefect_server import ui_url
from reelflow.store import repo
from reelflow.store.views import EventView, RunView, StepView

SHORT_ID = 12
STATUS_COLOURS = {"completed": "green", "failed": "red", "cancelled": "yellow"}


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
            "gpu_seconds": step.gpu_seconds, "cost_usd": usd_number(step.cost_usd), "error": step.error}


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
        "cost_usd": usd_number(run.cost_usd),
        "error": run.error,
        "prefect_flow_run_id": run.prefect_flow_run_id,
        "prefect_url": ui_url(run.prefect_flow_run_id),
        "created_at": run.created_at.isoformat(),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_s": _seconds(run.started_at, run.finished_at),
        "steps": [step_json(step) for step in run.steps],
    }


def _json_value(value: Any) -> Any:
    """Money (``Decimal``) as a JSON number with its exact text; anything else JSON does not know as text."""
    return usd_json(value) if isinstance(value, Decimal) else str(value)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_value))


def print_run(console: Console, run: RunView, *, link: bool = True) -> None:
    colour = STATUS_COLOURS.get(run.status, "cyan")
    cached = " (from cache, nothing rendered)" if run.cached else ""
    console.print(f"[bold]run {run.run_id}[/] [{colour}]{run.status}[/]{cached}  model {run.model}")
    for output in run.outputs:
        if output.role != "input":
            where = output.path or output.url
            size = f"{output.width}x{output.height}" if output.width else ""
            console.print(f"  {output.role}: {where}  {output.content_type} {size} {output.bytes} bytes",
                          soft_wrap=True, markup=False)
    for step in run.steps:
        took = _seconds(step.started_at, step.finished_at)
        facts = [f"{took:.1f} s" if took is not None else None,
                 f"GPU {step.gpu_seconds:.1f} s" if step.gpu_seconds is not None else None,
                 f"job {step.provider_job_id}" if step.provider_job_id else None,
                 f"${step.cost_usd:.4f}" if step.cost_usd is not None else None]
        console.print(f"  step {step.name} ({step.backend}) {step.status}  "
                      + "  ".join(f for f in facts if f), soft_wrap=True)
    if run.status == "completed" or run.cost_usd is not None:
        console.print(f"  cost: {usd_text(run.cost_usd)}")
    if run.error:
        console.print(f"  [red]error:[/] {escape(run.error)}", soft_wrap=True)
    if link and (url := ui_url(run.prefect_flow_run_id)):
        console.print(f"  prefect: {url}", soft_wrap=True)


def print_events(console: Console, events: list[EventView]) -> None:
    for event in events:
        progress = f" {event.progress:.0%}" if event.progress is not None else ""
        where = f" [{event.step}]" if event.step else ""
        console.print(f"  {event.created_at:%H:%M:%S} {event.kind}{where}{progress} {event.message}",
                      soft_wrap=True, markup=False)


def print_runs(console: Console, runs: list[RunView], total: int, offset: int = 0) -> None:
    """One line per run (id, status, model, created, cost), its video path or error whole on the next line:
    nothing is cut short or folded into a narrow column, at any terminal width."""
    shown = f"{offset + 1}-{offset + len(runs)}" if runs else "none"
    console.print(f"[bold]runs[/] ({shown} of {total})")
    ids = [short_id(run.run_id) for run in runs]
    id_width = max((len(i) for i in ids), default=12)
    model_width = max((len(run.model) for run in runs), default=0)
    for run_id, run in zip(ids, runs, strict=True):
        colour = STATUS_COLOURS.get(run.status, "cyan")
        cost = f"${run.cost_usd:.4f}" if run.cost_usd is not None else "-"
        console.print(f"  {run_id:<{id_width}}  [{colour}]{run.status:<9}[/]  {escape(run.model):<{model_width}}  "
                      f"{run.created_at:%Y-%m-%d %H:%M}  {cost}", soft_wrap=True)
        video = run.video
        if detail := ((video.path or video.url) if video else run.error):
            console.print(f"    {escape(detail)}", soft_wrap=True)
