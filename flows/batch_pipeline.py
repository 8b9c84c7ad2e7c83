"""``batch_pipeline``: many pipeline runs from a folder, a CSV/JSONL file or a list, one failure hurting none.

Every item is recorded as a run of the batch (``prepare_run`` with the batch id; a finished identical run
is reused, so a re-run renders only what did not complete). Items then run as flow runs of the
``video-pipeline`` deployment when workers serve it, so they spread over every worker and each is
retried, cancelled and logged on its own in the Prefect UI; provider slots are taken inside the tasks
from the server's global concurrency limits, which hold across workers. Without workers they run here
as subflows. ``max_in_flight`` caps how many items of this batch are queued or running at once.
An item whose flow run crashed (infrastructure, not the item) is started again once.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from flows.pipeline_flow import pipeline_run
from flows.video_pipeline import video_pipeline
from reelflow.core import batch
from reelflow.core.batch import BatchItem, ItemResult
from reelflow.core.domain import Via
from reelflow.core.money import total_usd, usd_number, usd_text
from reelflow.core.pipeline.load import load_definition
from reelflow.errors import ReelflowError
from reelflow.orchestration.prefect_server import ui_url
from reelflow.runs import dispatch
from reelflow.runs.pipelines import prepare_pipeline_run
from reelflow.runs.prepare import Prepared, prepare_run
from reelflow.store import repo
from reelflow.store.views import RunView

POLL_S = 0.5
RECONCILE_EVERY_S = 10.0
CRASH_RETRIES = 1


def _run_name() -> str:
    """The batch id (``batch-<hash>``, what ``reelflow runs --batch`` takes), else the source's file name."""
    params = flow_run.parameters
    source = params.get("source")
    if params.get("batch_id"):
        return str(params["batch_id"])[:80]
    return f"batch-{PurePath(source).name if isinstance(source, str) else f'{len(source or [])}-items'}"[:80]


def result_of(item: BatchItem, run: RunView, cached: bool = False) -> ItemResult:
    video = run.video
    return ItemResult(item=item.label, status=run.status, run_id=run.run_id, cached=cached, cost_usd=run.cost_usd,
                      error=run.error, video=(video.path or video.url) if video else None,
                      prefect_url=ui_url(run.prefect_flow_run_id))


@dataclass
class _Tally:
    """Each item's result as it ends, announced to in-process listeners (the CLI's progress bar)."""

    batch_id: str
    total: int
    results: dict[int, ItemResult] = field(default_factory=dict)

    def done(self, index: int, result: ItemResult) -> None:
        self.results[index] = result
        batch.notify(self.batch_id, result, len(self.results), self.total)


async def _run_here(pending: list[tuple[int, BatchItem, RunView]], tally: _Tally, force: bool, limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(index: int, item: BatchItem, run: RunView) -> None:
        async with gate:
            if "steps" in run.spec:  # a pipeline run (a batch with a definition)
                state = await pipeline_run(run_id=run.run_id, force=force, return_state=True)
            else:
                state = await video_pipeline(spec=run.spec, run_id=run.run_id, force=force, return_state=True)
        if repo.get_run(run.run_id).status not in repo.FINISHED:
            repo.mark_run(run.run_id, "failed", error=state.message or f"flow run ended {state.name}")
        tally.done(index, result_of(item, repo.get_run(run.run_id)))

    await asyncio.gather(*(one(*entry) for entry in pending))


async def _run_on_workers(pending: list[tuple[int, BatchItem, RunView]], tally: _Tally, force: bool,
                          limit: int) -> None:
    queue, in_flight = list(pending), {}
    crashes: dict[str, int] = {}
    tags = (f"batch:{tally.batch_id}",)
    next_reconcile = time.monotonic() + RECONCILE_EVERY_S
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                index, item, run = queue.pop(0)
                try:
                    await dispatch.trigger(run, force=force, tags=tags)
                    in_flight[run.run_id] = (index, item)
                except ReelflowError:
                    tally.done(index, result_of(item, repo.get_run(run.run_id)))
            await asyncio.sleep(POLL_S)
            reconcile = time.monotonic() >= next_reconcile
            for run_id, (index, item) in list(in_flight.items()):
                found = repo.get_run(run_id)
                attempt = crashes.get(run_id, 0) + 1
                if reconcile and attempt <= CRASH_RETRIES and await dispatch.retry_crashed(
                        found, force=force, tags=tags, attempt=attempt):
                    crashes[run_id] = attempt
                    continue
                if reconcile:
                    found = await dispatch.reconcile(found)
                if found.status in repo.FINISHED:
                    del in_flight[run_id]
                    tally.done(index, result_of(item, found))
            if reconcile:
                next_reconcile = time.monotonic() + RECONCILE_EVERY_S
    except asyncio.CancelledError:
        for run_id in in_flight:
            if flow_run_id := repo.get_run(run_id).prefect_flow_run_id:
                await dispatch.cancel_flow_run(flow_run_id)
        for _, _, run in queue:
            repo.mark_run(run.run_id, "cancelled", error="batch cancelled")
        raise


def batch_cost(results: list[ItemResult]) -> Decimal | None:
    """What the items cost together; unknown (None) when a completed item's cost is unknown: unknown is not free."""
    if any(r.status == "completed" and r.cost_usd is None for r in results):
        return None
    return total_usd(r.cost_usd or Decimal(0) for r in results)


def _summary(batch_id: str, items: list[BatchItem], tally: _Tally) -> dict[str, Any]:
    results = [tally.results[i] for i in range(len(items))]
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return {"batch_id": batch_id, "total": len(items), "counts": counts,
            "cached": sum(r.cached for r in results),
            "cost_usd": usd_number(batch_cost(results)),
            "items": [r.model_dump(mode="json") for r in results]}


async def _publish(summary: dict[str, Any]) -> None:
    rows = [{"item": r["item"], "status": r["status"] + (" (cached)" if r["cached"] else ""),
             "cost_usd": r["cost_usd"], "error": r["error"] or "", "video": r["video"] or "",
             "prefect": r["prefect_url"] or "", "run_id": r["run_id"] or ""} for r in summary["items"]]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary["counts"].items()))
    key = re.sub(r"[^a-z0-9-]+", "-", summary["batch_id"].lower()).strip("-")
    await acreate_table_artifact(table=rows, key=key,
                                 description=f"reelflow batch {summary['batch_id']}: {summary['total']} items, "
                                             f"{counts}; cost {usd_text(summary['cost_usd'])}")


@flow(name="batch_pipeline", flow_run_name=_run_name, log_prints=True)
async def batch_pipeline(source: str | list[str | dict[str, Any]], prompts: list[str] | None = None,
                         defaults: dict[str, Any] | None = None, batch_id: str | None = None, via: Via = "auto",
                         max_in_flight: int = 8, force: bool = False, allow_empty: bool = False,
                         pipeline: dict[str, Any] | None = None) -> Any:
    """Render every item of ``source`` (see ``reelflow.core.batch.build_items``)
    with ``defaults`` (model, duration, ...). With a ``pipeline`` definition, ``source`` is a CSV/JSONL file and
    each row is one run of that pipeline, the row's columns its inputs (``defaults`` fill the rest); those runs
    execute here, as subflows.

    Ends Completed when every item completed, else Failed naming how many did not; the result (and the
    ``batch-...`` table artifact) lists each item with its status, cost, error and links.
    """
    definition = load_definition(pipeline) if pipeline is not None else None
    if definition is not None:
        if not isinstance(source, str):
            raise ReelflowError("a pipeline batch takes a .csv or .jsonl file of inputs as its source")
        items = batch.build_pipeline_items(source, definition, defaults=defaults)
        batch_id = batch_id or batch.pipeline_batch_id(definition, items)
    else:
        items = batch.build_items(source, prompts=prompts, defaults=defaults, allow_empty=allow_empty)
        batch_id = batch_id or batch.batch_id_for(items)
    tally = _Tally(batch_id, len(items))
    pending: list[tuple[int, BatchItem, RunView]] = []
    for index, item in enumerate(items):
        try:
            prepared: Prepared = (prepare_run(item.spec, force=force, batch_id=batch_id) if definition is None else
                                  prepare_pipeline_run(definition, item.spec, force=force, batch_id=batch_id))
        except ReelflowError as exc:
            tally.done(index, ItemResult(item=item.label, status="rejected", error=str(exc)))
            continue
        if prepared.cached:
            tally.done(index, result_of(item, prepared.run, cached=True))
        else:
            pending.append((index, item, prepared.run))
    print(f"batch {batch_id}: {len(items)} items, {len(pending)} to render")
    if pending:
        mode = "local" if definition is not None else await dispatch.resolve_via(via)
        runner = _run_on_workers if mode == "deployment" else _run_here
        await runner(pending, tally, force, max(1, max_in_flight))
    summary = _summary(batch_id, items, tally)
    await _publish(summary)
    missed = len(items) - summary["counts"].get("completed", 0)
    if missed:
        return Failed(message=f"{missed} of {len(items)} items did not complete", data=summary)
    return summary
