"""How runs and models look on the terminal and in ``--json``."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from reelflow.orchestration.prefect_server import ui_url
from reelflow.store.views import RunView


def run_json(run: RunView) -> dict[str, Any]:
    outputs = sorted(run.outputs, key=lambda o: o.role == "input")
    return {
        "run_id": run.run_id,
        "status": run.status,
        "cached": run.cached,
        "model": run.model,
        "backend": run.backend,
        "outputs": [o.model_dump(mode="json", exclude_none=True) for o in outputs],
        "cost_usd": run.cost_usd,
        "error": run.error,
        "prefect_flow_run_id": run.prefect_flow_run_id,
        "prefect_url": ui_url(run.prefect_flow_run_id),
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_run(console: Console, run: RunView) -> None:
    colour = {"completed": "green", "failed": "red", "cancelled": "yellow"}.get(run.status, "cyan")
    cached = " (from cache, nothing rendered)" if run.cached else ""
    console.print(f"[bold]run {run.run_id}[/] [{colour}]{run.status}[/]{cached}  model {run.model}")
    for output in run.outputs:
        if output.role != "input":
            where = output.path or output.url
            size = f"{output.width}x{output.height}" if output.width else ""
            console.print(f"  {output.role}: {where}  {output.content_type} {size} {output.bytes} bytes")
    if run.cost_usd is not None:
        console.print(f"  cost: ${run.cost_usd:.4f}")
    if run.error:
        console.print(f"  [red]error:[/] {run.error}")
    link = ui_url(run.prefect_flow_run_id)
    if link:
        console.print(f"  prefect: {link}")


def runs_table(runs: list[RunView], total: int) -> Table:
    table = Table(title=f"runs ({len(runs)} of {total})")
    for column in ("run id", "status", "model", "created", "cost", "video"):
        table.add_column(column)
    for run in runs:
        video = run.video
        table.add_row(run.run_id, run.status, run.model, run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                      f"${run.cost_usd:.4f}" if run.cost_usd is not None else "-",
                      (video.path or video.url or "") if video else (run.error or "")[:60])
    return table
