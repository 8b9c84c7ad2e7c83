"""Starting a stored pipeline's latest version (a one-video preset as its one-step pipeline) from an API request:
image inputs resolved as the API takes images (a URL or an upload, never a server path), the run recorded (checked
whole first) and started in the background."""

from __future__ import annotations

from typing import Any

from reelflow.core.pipeline.load import load_definition
from reelflow.runs.launcher import Launcher
from reelflow.runs.pipelines import prepare_pipeline_run
from reelflow.runs.prepare import Prepared
from reelflow.store import pipelines
from reelflow.web.services.images import resolve_image


def start_pipeline_run(pipeline_id: str, inputs: dict[str, Any], launcher: Launcher, *,
                       force: bool = False) -> Prepared:
    stored = pipelines.get_pipeline(pipeline_id)  # a one-video preset reads as its one-step pipeline
    definition = load_definition(stored.definition)
    given = dict(inputs)
    for name, spec in definition.inputs.items():
        if spec.type == "image" and isinstance(given.get(name), str):
            given[name] = resolve_image(given[name], field=f"inputs.{name}")
    prepared = prepare_pipeline_run(definition, given, force=force, pipeline_id=pipeline_id,
                                    version=stored.version)
    if not prepared.cached:
        launcher.start(prepared.run.run_id, prepared.run.spec, force=force)
    return prepared
