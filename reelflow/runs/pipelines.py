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
from typing import Any

from reelflow.core.domain import MediaRef, ProviderOutput, Via
from reelflow.core.inputs import load_image
from reelflow.core.pipeline.check import check_definition, resolve_inputs
from reelflow.core.pipeline.definition import PipelineDefinition
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
