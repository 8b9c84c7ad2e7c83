"""Starting a stored pipeline's latest version (a one-video preset as its one-step pipeline) from an API request:
image inputs resolved as the API takes images (a URL or an upload, never a server path), the run recorded (checked
whole first) and started in the background."""

from __future__ import annotations

from typing import Any

from reelflow.core.pipeline.load import load_definition
from reelflow.errors import ApiError
from reelflow.runs import retry
from reelflow.runs.launcher import Launcher
from reelflow.runs.pipelines import describe_steps, final_outputs, is_pipeline_run, prepare_pipeline_run
from reelflow.runs.prepare import Prepared
from reelflow.store import pipelines, repo
from reelflow.store.views import RunView
from reelflow.web.services.images import resolve_image
from reelflow.web.services.present import MEDIA_PREFIX, run_out


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


def _browser_media(value: Any) -> Any:
    """A step output for the browser: a stored file as its ``/api/media/<key>`` URL (never a server path)."""
    if isinstance(value, list):
        return [_browser_media(v) for v in value]
    if not isinstance(value, dict):
        return value
    url = MEDIA_PREFIX + value["key"] if value.get("key") and value.get("path") else value.get("url")
    shown = {k: v for k, v in value.items() if k not in ("path", "url")}
    return {**shown, "url": url if isinstance(url, str) and url.startswith(("/", "http://", "https://")) else None}


def run_graph(run_id: str) -> dict[str, Any]:
    """The run with its step graph (as ``reelflow pipeline show --json`` has it), outputs as browser URLs."""
    run = repo.get_run(repo.resolve_run_id(run_id))
    steps = describe_steps(run)
    for step in steps:
        for item in step["items"]:
            item["outputs"] = {k: _browser_media(v) for k, v in item["outputs"].items()}
    final = {k: _browser_media(v) for k, v in final_outputs(run, [*steps]).items()}
    definition = run.spec if is_pipeline_run(run) else None
    return {"run": run_out(run), "kind": "pipeline" if definition else "video", "definition": definition,
            "steps": steps, "final_outputs": final}


def resume_pipeline_run(run_id: str, launcher: Launcher) -> RunView:
    """Resume a failed pipeline run from its failed step: the same run in a new flow run, completed steps kept
    (not rendered or paid again), as ``reelflow pipeline resume`` does."""
    run = repo.get_run(repo.resolve_run_id(run_id))
    if not is_pipeline_run(run):
        raise ApiError(409, f"run {run.run_id} is a one-video run; retry it with POST /api/runs/{run.run_id}/retry",
                       "run_id")
    if run.status != "failed":
        raise ApiError(409, f"run {run.run_id} is {run.status}; only a failed pipeline run resumes from its failed "
                       "step", "run_id")
    return retry.retry_run(run, launcher)
