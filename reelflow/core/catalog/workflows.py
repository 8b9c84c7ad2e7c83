"""Custom ComfyUI workflows registered as models (``comfyui:<name>``), kept as JSON under REELFLOW_HOME/workflows.

Each file holds the API-format graph, its injection points and the output node, checked when registered.
The built-in ``wan-2.2-i2v-comfyui`` model is the same kind of template, built in code.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from reelflow.core.catalog.models import ModelEntry, ModelInputs, Price, kind_of
from reelflow.core.files import write_text_atomic
from reelflow.errors import SpecError
from reelflow.providers.comfyui import WorkflowTemplate, load_custom_workflow
from reelflow.providers.comfyui.wan22 import Wan22Files, wan22_i2v_template
from reelflow.providers.comfyui.workflow import MediaKind, WorkflowError
from reelflow.settings import get_settings

PREFIX = "comfyui:"
WAN22_MODEL = "wan-2.2-i2v-comfyui"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_cache: dict[str, Any] = {"key": None, "models": []}
INPUT_CLASSES: dict[str, MediaKind] = {"LoadImage": "image", "LoadImageMask": "image", "LoadVideo": "video",
                                       "VHS_LoadVideo": "video", "VHS_LoadVideoPath": "video"}
"""Loader node classes and the input they load (a custom loader of another class is taken as named)."""
OUTPUT_CLASSES: dict[str, MediaKind] = {
    "SaveImage": "image", "PreviewImage": "image", "SaveVideo": "video", "SaveWEBM": "video",
    "VHS_VideoCombine": "video", "SaveAnimatedWEBP": "video", "SaveAnimatedPNG": "video"}
"""Save node classes and what they write, for ``--output-kind``'s default."""


class RegisteredWorkflow(BaseModel):
    """What ``reelflow workflows add`` stores."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    template: WorkflowTemplate
    source: str | None = None
    registered_at: str

    @property
    def model_id(self) -> str:
        return PREFIX + self.name


def workflows_dir() -> Path:
    return get_settings().home / "workflows"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SpecError("name", f"'{name}' must be 1-64 letters, digits, '.', '_' or '-', starting with a "
                        "letter or digit")
    return name


def _path(name: str) -> Path:
    return workflows_dir() / f"{check_name(name)}.json"


def _literal(template: WorkflowTemplate, point: str) -> Any:
    where = template.inject.points().get(point)
    return template.graph[where[0]]["inputs"][where[1]] if where else None


def _output_prefix_point(template: WorkflowTemplate) -> str | None:
    inputs = template.graph[template.output_node].get("inputs") or {}
    value = inputs.get("filename_prefix")
    return f"{template.output_node}.filename_prefix" if isinstance(value, str) else None


def _check_input_node(template: WorkflowTemplate) -> None:
    """The input point must not be on a loader of the other medium (``--image`` on a LoadVideo node)."""
    node_id, _ = template.inject.points()[template.input_kind]
    class_type = str(template.graph[node_id].get("class_type"))
    loads = INPUT_CLASSES.get(class_type)
    if loads is not None and loads != template.input_kind:
        raise SpecError(template.input_kind, f"node {node_id} is {class_type}, which loads {_a(loads)}; give "
                        f"--{loads} {node_id}.<input> instead of --{template.input_kind}")


def _a(kind: str) -> str:
    return f"an {kind}" if kind == "image" else f"a {kind}"


def _output_kind(graph: dict[str, Any], output: str, given: str | None) -> MediaKind:
    if given is not None:
        if given not in ("image", "video"):
            raise SpecError("output_kind", f"'{given}' must be 'image' or 'video'")
        return given  # type: ignore[return-value]
    node = graph.get(str(output))
    class_type = str(node.get("class_type")) if isinstance(node, dict) else None
    if class_type is None:
        raise SpecError("output", f"node '{output}' is not in the graph")
    found = OUTPUT_CLASSES.get(class_type)
    if found is None:
        raise SpecError("output_kind", f"node {output} is {class_type}, which reelflow does not know; say what it "
                        "saves with --output-kind image or --output-kind video")
    return found


def register(name: str, file: Path, *, output: str, image: str | None = None, video: str | None = None,
             prompt: str | None = None, seed: str | None = None, output_kind: str | None = None,
             negative_prompt: str | None = None, width: str | None = None, height: str | None = None,
             length: str | None = None, fps: str | None = None, filename_prefix: str | None = None,
             size_multiple: int = 16, frames_rule: str = "any", description: str = "",
             replace: bool = False) -> RegisteredWorkflow:
    """Check ``file`` (an API-format export) and every named node input, then store it as ``comfyui:<name>``.

    The workflow takes an image (``image``) or a video (``video``): exactly one is named. What it makes is
    ``output_kind``, by default what the output node's class saves. The output node's ``filename_prefix`` is
    used automatically when ``filename_prefix`` is not named.
    """
    path = _path(name)
    if path.exists() and not replace:
        raise SpecError("name", f"a workflow named '{name}' is registered already; remove it first or use --replace")
    if (image is None) == (video is None):
        raise SpecError("image", "give exactly one of --image NODE.FIELD (the workflow takes an image) and --video "
                        f"NODE.FIELD (it takes a video); got {'both' if image else 'neither'}")
    if frames_rule not in ("any", "4n+1"):
        raise SpecError("frames_rule", f"'{frames_rule}' must be 'any' or '4n+1'")
    template = load_custom_workflow(file, image=image, video=video, prompt=prompt, seed=seed, output_node=output,
                                    output_kind="video", negative_prompt=negative_prompt, width=width,
                                    height=height, length=length, fps=fps, filename_prefix=filename_prefix,
                                    name=name, size_multiple=size_multiple,
                                    length_rule=(4, 1) if frames_rule == "4n+1" else None)
    template = template.model_copy(update={"output_kind": _output_kind(template.graph, output, output_kind)})
    _check_input_node(template)
    if template.inject.filename_prefix is None and (auto := _output_prefix_point(template)):
        template = template.model_copy(update={"inject": template.inject.model_copy(
            update={"filename_prefix": tuple(auto.split("."))})})
    entry = RegisteredWorkflow(name=name, description=description, template=template,
                               source=str(Path(file).resolve()), registered_at=datetime.now(UTC).isoformat())
    write_text_atomic(path, entry.model_dump_json(indent=1))
    return entry


def remove(name: str) -> bool:
    path = _path(name)
    if not path.exists():
        return False
    path.unlink()
    return True


def _read(path: Path) -> RegisteredWorkflow | None:
    try:
        return RegisteredWorkflow.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, WorkflowError):
        return None


def registered() -> list[RegisteredWorkflow]:
    """Every readable registered workflow, by name (re-read only when the folder changes)."""
    folder = workflows_dir()
    try:
        files = sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.name.endswith(".json"))
    except FileNotFoundError:
        files = []
    key = (str(folder), tuple(files))
    if _cache["key"] != key:
        found = [_read(folder / file_name) for file_name, _ in files]
        _cache.update(key=key, models=[w for w in found if w is not None])
    return list(_cache["models"])


def model_entry(workflow: RegisteredWorkflow) -> ModelEntry:
    """A catalog entry whose defaults reproduce the workflow as exported (its size, length and fps)."""
    template = workflow.template
    points = template.inject.points()
    fps = _literal(template, "fps")
    length = _literal(template, "length")
    default_fps = int(fps) if isinstance(fps, int | float) and fps > 0 else 16
    timed = "length" in points or "fps" in points
    width, height = _literal(template, "width"), _literal(template, "height")
    sized = isinstance(width, int) and isinstance(height, int)
    inputs = ModelInputs(
        prompt="required" if "prompt" in points else "unused", negative_prompt="negative_prompt" in points,
        duration_range=(0.1, 60.0) if timed else None,
        default_duration=round(length / default_fps, 6) if isinstance(length, int) and length > 0 else None,
        fps_range=(1, 60) if timed else None, default_fps=default_fps if timed else None,
        frames_rule="4n+1" if template.length_rule == (4, 1) else None,
        width_range=(16, 4096) if sized else None, height_range=(16, 4096) if sized else None,
        size_multiple=template.size_multiple or 1, default_resolution=f"{width}x{height}" if sized else None,
        seed="seed" in points)
    source = f" from {Path(workflow.source).name}" if workflow.source else ""
    kind = kind_of(template.input_kind, template.output_kind)
    return ModelEntry(id=workflow.model_id, name=f"{workflow.name} (your ComfyUI workflow)", kind=kind,
                      backend="comfyui", endpoint=f"workflow/{workflow.name}", ai=True,
                      description=workflow.description or f"Custom ComfyUI workflow registered{source}.",
                      speed_hint="depends on the workflow and your GPU", inputs=inputs, price=Price(unit="gpu_hour"))


def registered_models() -> list[ModelEntry]:
    return [model_entry(w) for w in registered()]


def wan22_template() -> WorkflowTemplate:
    """The built-in Wan 2.2 graph with the model file names of the settings (``REELFLOW_WAN22_*``)."""
    return wan22_i2v_template(Wan22Files(**get_settings().wan22.model_dump()))


def template_for(model: ModelEntry) -> WorkflowTemplate:
    """The graph a comfyui-backend model runs: the built-in Wan 2.2 one, or a registered workflow."""
    if model.id == WAN22_MODEL:
        return wan22_template()
    name = model.id.removeprefix(PREFIX)
    found = _read(_path(name)) if model.id.startswith(PREFIX) else None
    if found is None:
        raise SpecError("model", f"no ComfyUI workflow is registered for '{model.id}' "
                        "(see `reelflow workflows list`)")
    return found.template
