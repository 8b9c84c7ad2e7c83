"""Plain helpers over an API-format ComfyUI graph: node id -> {class_type, inputs}."""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

Graph = dict[str, Any]

MODEL_INPUT_FOLDERS: dict[str, str] = {
    "unet_name": "diffusion_models",
    "clip_name": "text_encoders",
    "clip_name1": "text_encoders",
    "clip_name2": "text_encoders",
    "clip_name3": "text_encoders",
    "vae_name": "vae",
    "lora_name": "loras",
    "ckpt_name": "checkpoints",
}


class ModelRef(NamedTuple):
    """One model file a graph needs: the ComfyUI model folder, the file, and where the graph names it."""

    folder: str
    filename: str
    node_id: str
    input_name: str

    def describe(self) -> str:
        return f"{self.folder}/{self.filename} (node {self.node_id}.{self.input_name})"


def is_node(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("class_type"), str)


def is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int))


def nodes_only(graph: Graph) -> Graph:
    """A deep copy without top-level keys that are not nodes (``_comment`` and the like)."""
    return {str(key): copy.deepcopy(value) for key, value in graph.items() if is_node(value)}


def class_of(graph: Graph, node_id: str) -> str:
    return str(graph[node_id]["class_type"])


def required_models(graph: Graph) -> list[ModelRef]:
    """Every literal model file name on a loader node, in graph order."""
    refs: list[ModelRef] = []
    for node_id, node in graph.items():
        if not is_node(node) or "Loader" not in node["class_type"]:
            continue
        for input_name, value in (node.get("inputs") or {}).items():
            folder = MODEL_INPUT_FOLDERS.get(input_name)
            if folder and isinstance(value, str):
                refs.append(ModelRef(folder, value, str(node_id), input_name))
    return refs
