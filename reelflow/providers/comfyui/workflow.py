"""A ComfyUI workflow: an API-format graph plus the named places where a job's values go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from reelflow.core.domain import VideoParams
from reelflow.errors import SpecError, WorkflowError
from reelflow.providers.comfyui.graph import Graph, ModelRef, is_link, nodes_only, required_models

__all__ = ["Injections", "MediaKind", "MediaParams", "ModelRef", "WorkflowTemplate", "load_custom_workflow", "render",
           "required_models"]

Injection = tuple[str, str]
MediaKind = Literal["image", "video"]
MAX_SEED = 2**64 - 1


def parse_injection(value: Any) -> Injection | None:
    """``"97.image"`` or ``("97", "image")`` -> ``("97", "image")``."""
    if value is None:
        return None
    if isinstance(value, str):
        node_id, dot, input_name = value.rpartition(".")
        if not dot or not node_id or not input_name:
            raise WorkflowError(f"injection point '{value}' must look like '<node id>.<input name>'")
        return node_id, input_name
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), str(value[1])
    raise WorkflowError(f"injection point {value!r} must be '<node id>.<input name>' or a pair")


class Injections(BaseModel):
    """Where each job value goes, as (node id, input name). Values without a point keep the graph's own.

    Exactly one of ``image`` and ``video`` is where the uploaded input goes; it says what the workflow takes."""

    model_config = ConfigDict(frozen=True)

    image: Injection | None = None
    video: Injection | None = None
    prompt: Injection | None = None
    seed: Injection | None = None
    negative_prompt: Injection | None = None
    width: Injection | None = None
    height: Injection | None = None
    length: Injection | None = None
    fps: Injection | None = None
    filename_prefix: Injection | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Injection | None:
        return parse_injection(value)

    @model_validator(mode="after")
    def _one_input(self) -> Injections:
        if (self.image is None) == (self.video is None):
            raise WorkflowError("a workflow takes exactly one input: give the image point or the video point "
                                f"(got {'both' if self.image else 'neither'})")
        return self

    @property
    def input_kind(self) -> MediaKind:
        return "image" if self.image is not None else "video"

    def points(self) -> dict[str, Injection]:
        return {name: point for name, point in self.model_dump().items() if point is not None}


class MediaParams(BaseModel):
    """The values of one job of a workflow that does not make a video from an image (an upscaler, an
    interpolator): only what such a workflow can take besides its input."""

    model_config = ConfigDict(frozen=True)

    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int = 0


class WorkflowTemplate(BaseModel):
    """An API-format graph, its injection points and the node whose output (``output_kind``) is kept.

    Files written before ``output_kind`` existed are image-to-video workflows, which the defaults say."""

    model_config = ConfigDict(frozen=True)

    name: str = "custom"
    graph: dict[str, Any]
    inject: Injections
    output_node: str
    output_kind: MediaKind = "video"
    size_multiple: int | None = None
    length_rule: tuple[int, int] | None = None

    @field_validator("graph")
    @classmethod
    def _only_nodes(cls, graph: dict[str, Any]) -> Graph:
        nodes = nodes_only(graph)
        if not nodes:
            raise WorkflowError("the graph has no nodes (expected an API-format export: "
                                "node id -> {class_type, inputs})")
        return nodes

    @model_validator(mode="after")
    def _points_exist(self) -> WorkflowTemplate:
        if self.output_node not in self.graph:
            raise WorkflowError(f"workflow '{self.name}': output node '{self.output_node}' is not in the "
                                f"graph (nodes: {', '.join(sorted(self.graph))})")
        for name, (node_id, input_name) in self.inject.points().items():
            node = self.graph.get(node_id)
            if node is None:
                raise WorkflowError(f"workflow '{self.name}': {name} goes to node '{node_id}', "
                                    "which is not in the graph")
            inputs = node.get("inputs") or {}
            if input_name not in inputs:
                raise WorkflowError(f"workflow '{self.name}': {name} goes to {node_id}.{input_name}, but "
                                    f"node {node_id} ({node['class_type']}) has inputs {sorted(inputs)}")
            if is_link(inputs[input_name]):
                raise WorkflowError(f"workflow '{self.name}': {node_id}.{input_name} is a link from node "
                                    f"{inputs[input_name][0]}; point {name} at a literal input")
        return self

    @property
    def input_kind(self) -> MediaKind:
        return self.inject.input_kind

    def required_models(self) -> list[ModelRef]:
        return required_models(self.graph)


def _check_params(template: WorkflowTemplate, params: VideoParams | MediaParams) -> None:
    if not 0 <= params.seed <= MAX_SEED:
        raise SpecError("seed", f"{params.seed} is outside 0..{MAX_SEED}")
    if not isinstance(params, VideoParams):
        return
    multiple = template.size_multiple
    for field, value in (("width", params.width), ("height", params.height)):
        if value is not None and (value <= 0 or (multiple and value % multiple)):
            raise SpecError(field, f"{value} must be a positive multiple of {multiple or 1} "
                            f"for {template.name}")
    if params.frames is not None and template.length_rule:
        step, rest = template.length_rule
        if params.frames < 1 or params.frames % step != rest:
            raise SpecError("frames", f"{params.frames} frames is not {step}n+{rest} "
                            f"as {template.name} needs")


def _check_prefix(prefix: str) -> None:
    if not prefix or prefix.startswith("/") or ".." in prefix.split("/"):
        raise SpecError("filename_prefix", f"'{prefix}' must be a relative path without '..'")


def render(template: WorkflowTemplate, *, upload_name: str, params: VideoParams | MediaParams,
           filename_prefix: str) -> Graph:
    """A fresh graph with this job's values injected (``upload_name``: the uploaded input, image or video),
    ready for POST /prompt."""
    _check_params(template, params)
    _check_prefix(filename_prefix)
    video = params if isinstance(params, VideoParams) else None
    values: dict[str, Any] = {
        template.input_kind: upload_name, "prompt": params.prompt, "seed": params.seed,
        "negative_prompt": params.negative_prompt, "filename_prefix": filename_prefix,
        "width": video and video.width, "height": video and video.height, "length": video and video.frames,
        "fps": video and video.fps,
    }
    graph = nodes_only(template.graph)
    for name, (node_id, input_name) in template.inject.points().items():
        if values.get(name) is not None:
            graph[node_id]["inputs"][input_name] = values[name]
    return graph


def _read_graph(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WorkflowError(f"workflow file {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WorkflowError(f"workflow file {path} must hold a JSON object")
    if isinstance(data.get("nodes"), list) and "links" in data:
        raise WorkflowError(f"workflow file {path} is a UI-format workflow; export it with "
                            "'Export (API)' in ComfyUI and use that file")
    return data


def load_custom_workflow(path: str | Path, *, image: str | Injection | None = None,
                         video: str | Injection | None = None, prompt: str | Injection | None = None,
                         seed: str | Injection | None = None, output_node: str, output_kind: MediaKind = "video",
                         negative_prompt: str | Injection | None = None,
                         width: str | Injection | None = None, height: str | Injection | None = None,
                         length: str | Injection | None = None, fps: str | Injection | None = None,
                         filename_prefix: str | Injection | None = None, name: str | None = None,
                         size_multiple: int | None = None,
                         length_rule: tuple[int, int] | None = None) -> WorkflowTemplate:
    """Load an API-format workflow JSON and check that every named node and input exists.

    Injection points are ``"<node id>.<input name>"`` strings, e.g. ``image="97.image"``; exactly one of
    ``image`` and ``video`` is given.
    """
    path = Path(path)
    inject = Injections(image=image, video=video, prompt=prompt, seed=seed, negative_prompt=negative_prompt,
                        width=width, height=height, length=length, fps=fps, filename_prefix=filename_prefix)
    return WorkflowTemplate(name=name or path.stem, graph=_read_graph(path), inject=inject,
                            output_node=str(output_node), output_kind=output_kind, size_multiple=size_multiple,
                            length_rule=length_rule)
