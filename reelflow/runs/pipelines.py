"""Pipeline runs: record one (checked whole, image inputs stored, nothing recorded when anything is wrong), start
it (here or as a ``pipeline-run`` deployment run), wait for it, resume it.

A pipeline run's idempotency key is the hash of its definition and its resolved inputs (an image input by the
sha256 of its bytes): an identical completed run is returned as it is (``cached``) unless ``force``. A changed
definition or input records a new run, whose unchanged steps are reused by their own keys (``flows.pipeline_flow``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reelflow.core.domain import MediaRef, ProviderOutput, Via
from reelflow.core.inputs import load_image
from reelflow.core.money import total_usd, usd_number
from reelflow.core.pipeline.check import check_definition, resolve_inputs
from reelflow.core.pipeline.definition import OUTPUTS, PipelineDefinition, parse_ref
from reelflow.core.pipeline.graph import step_dependencies
from reelflow.core.pipeline.load import load_definition
from reelflow.errors import PipelineDefinitionError, RunNotResumableError, SpecError
from reelflow.runs.prepare import Prepared, outputs_present
from reelflow.storage import get_storage
from reelflow.store import pipeline_steps, repo
from reelflow.store.views import RunView

Source = PipelineDefinition | str | os.PathLike[str] | Mapping[str, Any]


def is_pipeline_run(run: RunView) -> bool:
    """A pipeline run's ``spec`` is its definition (a one-video spec has no ``steps``)."""
    return "steps" in run.spec


def _definition(source: Source) -> PipelineDefinition:
    return source if isinstance(source, PipelineDefinition) else load_definition(source)


def prepare_pipeline_run(source: Source, inputs: Mapping[str, Any], *, force: bool = False,
                         pipeline_id: str | None = None, version: int | None = None,
                         batch_id: str | None = None) -> Prepared:
    """Check the definition and inputs, then reuse an identical completed run (unless ``force``) or record a new
    queued one. Raises ``PipelineDefinitionError`` (a ``SpecError``) before anything is recorded or stored."""
    definition = _definition(source)
    check_definition(definition)
    resolved = resolve_inputs(definition, inputs)
    images = {}
    for name, spec in definition.inputs.items():
        if spec.type == "image" and resolved.get(name) is not None:
            try:
                images[name] = load_image(str(resolved[name]))
            except SpecError as exc:
                raise PipelineDefinitionError(None, f"inputs.{name}", exc.message) from None
    recorded = {**resolved, **{name: {"source": str(resolved[name]), "sha256": image.sha256}
                               for name, image in images.items()}}
    data = definition.model_dump(mode="json", exclude_none=True)
    key = hashlib.sha256(json.dumps({"definition": data, "inputs": recorded}, sort_keys=True,
                                    separators=(",", ":")).encode()).hexdigest()
    if not force:
        done = repo.find_completed_run(key)
        if done is not None and outputs_present(done):
            return Prepared(run=done.model_copy(update={"cached": True}), cached=True)
    storage = get_storage("auto")
    stored = {name: storage.put_bytes(image.data, image.content_type, f"input{image.extension}")
              for name, image in images.items()}
    run_id = uuid.uuid4().hex
    pipeline_steps.create_pipeline_run(run_id=run_id, idempotency_key=key, definition=data, inputs=recorded,
                                       name=definition.name, forced=force, pipeline_id=pipeline_id, version=version,
                                       batch_id=batch_id)
    for name, image in images.items():
        media = MediaRef(path=stored[name].path, url=stored[name].url, content_type=image.content_type)
        repo.add_output(run_id, None, stored[name],
                        ProviderOutput(media=media, role="input", width=image.width, height=image.height))
    return Prepared(run=repo.get_run(run_id), cached=False)


def record_pipeline_run(definition: PipelineDefinition, inputs: Mapping[str, Any], *, force: bool = False,
                        pipeline_id: str | None = None, version: int | None = None,
                        batch_id: str | None = None) -> str:
    """The id of the recorded (queued) run, or of the identical completed run it reuses."""
    return prepare_pipeline_run(definition, inputs, force=force, pipeline_id=pipeline_id, version=version,
                                batch_id=batch_id).run.run_id


async def execute_pipeline_here(run_id: str, *, force: bool = False) -> None:
    """Run the recorded pipeline run's flow in this event loop until it has ended."""
    from reelflow.runs.launcher import execute_here

    await execute_here(run_id, repo.get_run(run_id).spec, force=force)


async def arun_pipeline(source: Source, inputs: Mapping[str, Any], *, force: bool = False) -> RunView:
    prepared = prepare_pipeline_run(source, inputs, force=force)
    if not prepared.cached:
        await execute_pipeline_here(prepared.run.run_id, force=force)
        return repo.get_run(prepared.run.run_id)
    return prepared.run


def run_pipeline(source: Source, inputs: Mapping[str, Any] | None = None, *, force: bool = False) -> RunView:
    """Record and execute a pipeline run here, returning it once it has ended."""
    return asyncio.run(arun_pipeline(source, inputs or {}, force=force))


async def asubmit_pipeline(source: Source, inputs: Mapping[str, Any], *, force: bool = False,
                           via: Via = "auto") -> str:
    from reelflow.runs.launcher import process_launcher

    prepared = prepare_pipeline_run(source, inputs, force=force)
    if not prepared.cached:
        await process_launcher().astart(prepared.run.run_id, prepared.run.spec, force=force, via=via)
    return prepared.run.run_id


def submit_pipeline(source: Source, inputs: Mapping[str, Any] | None = None, *, force: bool = False,
                    via: Via = "auto") -> str:
    """Record a pipeline run and start it without waiting; returns its run id."""
    return asyncio.run(asubmit_pipeline(source, inputs or {}, force=force, via=via))


async def aresume_pipeline(run_id: str) -> RunView:
    """Continue a pipeline run whose process died or that failed: only steps not completed run again (their paid
    jobs resumed by their stored ids). Raises ``RunBusyError`` while a live process works on it."""
    from reelflow.runs.resume import aresume

    run = repo.get_run(run_id)
    if not is_pipeline_run(run):
        raise RunNotResumableError(f"run {run_id} is a one-video run; use `reelflow resume {run_id}`")
    return await aresume(run_id)


def resume_pipeline(run_id: str) -> str:
    asyncio.run(aresume_pipeline(run_id))
    return run_id


def _item_json(step: dict[str, Any]) -> dict[str, Any]:
    outputs = pipeline_steps.step_outputs(step["detail"])
    detail = step["detail"] or {}
    return {"name": step["name"], "status": step["status"], "backend": step["backend"],
            "provider_job_id": step["provider_job_id"], "attempts": step["attempts"], "cost_usd": step["cost_usd"],
            "error": step["error"], "seed": detail.get("seed"), "reused_from": detail.get("reused"),
            "idempotency_key": step["idempotency_key"],
            "outputs": {k: (v.model_dump(mode="json", exclude_none=True) if not isinstance(v, str) else v)
                        for k, v in outputs.items()}}


def _state(items: list[dict[str, Any]]) -> str:
    states = {item["status"] for item in items}
    for state in ("failed", "cancelled", "running", "waiting"):
        if state in states:
            return state
    if not items or states == {"pending"}:
        return "pending"
    if states == {"completed"}:
        return "completed"
    if "skipped" in states:
        return "skipped"
    return "running"


def _cost(items: list[dict[str, Any]]) -> Decimal | None:
    done = [i for i in items if i["status"] == "completed"]
    return total_usd(i["cost_usd"] for i in done) if done else None


def describe_steps(run: RunView) -> list[dict[str, Any]]:
    """The run's graph: each definition step with its kind, model, what it needs, state, cost and items (one, or
    one per fan-out item or extend clip); a one-video run is the built-in one-step pipeline."""
    if not is_pipeline_run(run):
        video = run.video
        return [{"id": "video", "kind": "image_to_video", "model": run.model, "depends_on": [],
                 "status": run.status, "cost_usd": usd_number(run.cost_usd), "error": run.error,
                 "items": [{"name": "video", "status": run.status, "backend": run.backend,
                            "cost_usd": usd_number(run.cost_usd),
                            "outputs": {"video": video.model_dump(mode="json", exclude_none=True)} if video else {},
                            "provider_job_id": next((s.provider_job_id for s in run.steps if s.provider_job_id),
                                                    None), "error": run.error}]}]
    definition = PipelineDefinition.model_validate(run.spec)
    deps = step_dependencies(definition)
    latest: dict[str, dict[str, Any]] = {}
    for row in pipeline_steps.pipeline_steps(run.run_id):
        if ":" not in row["name"]:  # helpers (``shots[1]:cache_r2:video``) are not graph items
            latest[row["name"]] = row  # the newest attempt of each name
    described = []
    for step in definition.steps:
        items = sorted((_item_json(row) | {"fan_index": row["fan_index"]} for row in latest.values()
                        if row["pipeline_step"] == step.id or row["name"] == step.id),
                       key=lambda i: i["fan_index"] or 0)
        cost = _cost(items)
        for item in items:  # JSON from here on: money as numbers with their exact text
            item["cost_usd"] = usd_number(item["cost_usd"])
        described.append({"id": step.id, "kind": step.kind, "model": step.model, "depends_on": sorted(deps[step.id]),
                          "status": _state(items), "cost_usd": usd_number(cost),
                          "error": next((i["error"] for i in items if i["status"] in ("failed", "skipped")), None),
                          "items": items})
    return described


def final_outputs(run: RunView, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The pipeline's outputs: the definition's ``outputs``, or every output of a step no other step takes."""
    definition = PipelineDefinition.model_validate(run.spec) if is_pipeline_run(run) else None
    if definition is None:
        return steps[0]["items"][0]["outputs"]
    wanted = definition.outputs
    if wanted is None:
        taken = {d for needed in step_dependencies(definition).values() for d in needed}
        wanted = {name: f"${s.id}.{name}" for s in definition.steps if s.id not in taken for name in OUTPUTS[s.kind]}
    by_id = {s["id"]: s for s in steps}
    found: dict[str, Any] = {}
    for name, ref_text in wanted.items():
        ref = parse_ref(ref_text)
        if ref is None or ref.source != "step" or ref.name not in by_id:
            continue
        values = [i["outputs"][ref.output] for i in by_id[ref.name]["items"] if ref.output in i["outputs"]]
        if ref.index is not None:
            values = values[ref.index:ref.index + 1]
        source = definition.step(ref.name)
        fans_out = source.for_each is not None or source.variants is not None or source.kind == "extend"
        if values:
            found[name] = values if fans_out and ref.index is None else values[0]
    return found
