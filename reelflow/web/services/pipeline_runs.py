"""Starting a stored pipeline's latest version from an API request: image inputs resolved as the API takes images
(a URL or an upload, never a server path), the run recorded (checked whole first) and started in the background."""

from __future__ import annotations

from typing import Any

from reelflow.core.pipeline.load import load_definition
from reelflow.errors import ApiError, PipelineNotFoundError
from reelflow.runs.launcher import Launcher
from reelflow.runs.pipelines import prepare_pipeline_run
from reelflow.runs.prepare import Prepared
from reelflow.store.db import session_scope
from reelflow.store.models import Pipeline
from reelflow.web.services.images import resolve_image


def _latest(pipeline_id: str) -> tuple[dict[str, Any], int]:
    with session_scope(readonly=True) as s:
        row = s.get(Pipeline, pipeline_id)
        if row is None:
            raise PipelineNotFoundError(pipeline_id)
        if row.definition is None:
            raise ApiError(409, f"pipeline '{pipeline_id}' is a one-video preset, not a graph of steps; run it with "
                           "POST /api/runs {\"pipeline_id\": ...}", "pipeline_id")
        return dict(row.definition), int(row.version)


def start_pipeline_run(pipeline_id: str, inputs: dict[str, Any], launcher: Launcher, *,
                       force: bool = False) -> Prepared:
    stored, version = _latest(pipeline_id)
    definition = load_definition(stored)
    given = dict(inputs)
    for name, spec in definition.inputs.items():
        if spec.type == "image" and isinstance(given.get(name), str):
            given[name] = resolve_image(given[name], field=f"inputs.{name}")
    prepared = prepare_pipeline_run(definition, given, force=force, pipeline_id=pipeline_id, version=version)
    if not prepared.cached:
        launcher.start(prepared.run.run_id, prepared.run.spec, force=force)
    return prepared
