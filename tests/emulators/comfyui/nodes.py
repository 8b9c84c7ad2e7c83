"""The emulator's node catalogue: which classes exist, their model inputs, outputs, and prompt validation."""

from __future__ import annotations

from typing import Any

LOADERS: dict[str, dict[str, str]] = {
    "CheckpointLoaderSimple": {"ckpt_name": "checkpoints"},
    "UNETLoader": {"unet_name": "diffusion_models"},
    "CLIPLoader": {"clip_name": "text_encoders"},
    "VAELoader": {"vae_name": "vae"},
    "LoraLoaderModelOnly": {"lora_name": "loras"},
    "LoraLoader": {"lora_name": "loras"},
}
OUTPUT_NODES: dict[str, tuple[str, str]] = {
    "SaveVideo": ("images", ".mp4"),
    "SaveWEBM": ("images", ".webm"),
    "SaveAnimatedWEBP": ("images", ".webp"),
    "VHS_VideoCombine": ("gifs", ".mp4"),
    "SaveImage": ("images", ".png"),
}
SAMPLERS = {"KSampler", "KSamplerAdvanced", "SamplerCustomAdvanced"}
PLAIN = {"ModelSamplingSD3", "LoadImage", "CLIPTextEncode", "WanImageToVideo", "VAEDecode", "CreateVideo",
         "EmptyLatentImage", "ImageScale", "RepeatImageBatch", "ImageScaleBy", "LoadVideo", "VHS_LoadVideo",
         "GetVideoComponents", "RIFE VFI", "FILM VFI"}
VIDEO_LOADERS: dict[str, str] = {"LoadVideo": "file", "VHS_LoadVideo": "video"}
"""Video loader classes and the input naming the uploaded file."""
INTERPOLATORS = {"RIFE VFI", "FILM VFI"}
KNOWN = set(LOADERS) | set(OUTPUT_NODES) | SAMPLERS | PLAIN
PSEUDO_MODELS = {"vae": ["pixel_space"]}

WAN_MODELS: dict[str, list[str]] = {
    "diffusion_models": ["wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                         "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"],
    "loras": ["wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
              "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"],
    "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors"],
    "vae": ["wan_2.1_vae.safetensors"],
    "checkpoints": ["sd15_tiny.safetensors"],
}


class Rejected(Exception):
    """POST /prompt answers 400 with this body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.body = body


def is_link(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int))


def combo(options: list[str], form: str) -> list[Any]:
    return ["COMBO", {"options": options, "multiselect": False}] if form == "v3" else [options, {}]


def object_info(class_type: str, installed: dict[str, list[str]], form: str,
                absent: set[str]) -> dict[str, Any]:
    """``/object_info/{class}``: the class with combo lists of installed files, or ``{}`` if not installed."""
    if class_type not in KNOWN or class_type in absent:
        return {}
    required = {name: combo(installed.get(folder, []) + PSEUDO_MODELS.get(folder, []), form)
                for name, folder in LOADERS.get(class_type, {}).items()}
    return {class_type: {"input": {"required": required, "optional": {}},
                         "input_order": {"required": list(required)}, "output": [], "output_name": [],
                         "name": class_type, "display_name": class_type, "category": "emulated",
                         "output_node": class_type in OUTPUT_NODES}}


def closure(graph: dict[str, Any], roots: list[str]) -> list[str]:
    """Nodes the roots depend on, dependencies first."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen or node_id not in graph:
            return
        seen.add(node_id)
        for value in (graph[node_id].get("inputs") or {}).values():
            if is_link(value):
                visit(value[0])
        order.append(node_id)

    for root in roots:
        visit(root)
    return order


def _invalid(message: str, details: str, kind: str = "invalid_prompt") -> Rejected:
    return Rejected({"error": {"type": kind, "message": message, "details": details, "extra_info": {}},
                     "node_errors": {}})


def _not_in_list(input_name: str, value: Any, options: list[str]) -> dict[str, Any]:
    listed = f"(list of length {len(options)})" if len(options) > 20 else str(options)
    return {"type": "value_not_in_list", "message": "Value not in list",
            "details": f"{input_name}: '{value}' not in {listed}",
            "extra_info": {"input_name": input_name, "received_value": value,
                           "input_config": None if len(options) > 20 else [options, {}]}}


def _node_errors(node: dict[str, Any], installed: dict[str, list[str]],
                 images: set[str]) -> list[dict[str, Any]]:
    inputs = node.get("inputs") or {}
    errors = []
    for input_name, folder in LOADERS.get(node["class_type"], {}).items():
        options = installed.get(folder, []) + PSEUDO_MODELS.get(folder, [])
        if inputs.get(input_name) not in options:
            errors.append(_not_in_list(input_name, inputs.get(input_name), options))
    if node["class_type"] == "LoadImage" and inputs.get("image") not in images:
        errors.append({"type": "custom_validation_failed", "message": "Custom validation failed for node",
                       "details": f"image - Invalid image file: {inputs.get('image')}",
                       "extra_info": {"input_name": "image"}})
    video_input = VIDEO_LOADERS.get(node["class_type"])
    if video_input is not None and inputs.get(video_input) not in images:
        errors.append({"type": "custom_validation_failed", "message": "Custom validation failed for node",
                       "details": f"{video_input} - Invalid video file: {inputs.get(video_input)}",
                       "extra_info": {"input_name": video_input}})
    return errors


def validate(graph: Any, installed: dict[str, list[str]], images: set[str],
             absent: set[str]) -> tuple[list[str], dict[str, Any]]:
    """(output nodes that will run, node_errors) or ``Rejected`` with the 400 body ComfyUI would send."""
    if not isinstance(graph, dict) or not graph:
        raise _invalid("No prompt provided", "", "no_prompt")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            raise _invalid("Cannot execute because a node is missing the class_type property.",
                           f"Node ID '#{node_id}'")
        if node["class_type"] not in KNOWN or node["class_type"] in absent:
            raise _invalid(f"Cannot execute because node {node['class_type']} does not exist.",
                           f"Node ID '#{node_id}'")
    outputs = [node_id for node_id, node in graph.items() if node["class_type"] in OUTPUT_NODES]
    if not outputs:
        raise _invalid("Prompt has no outputs", "", "prompt_no_outputs")
    errors = {node_id: found for node_id, node in graph.items()
              if (found := _node_errors(node, installed, images))}
    node_errors: dict[str, Any] = {}
    good = []
    for output in outputs:
        bad = [node_id for node_id in closure(graph, [output]) if node_id in errors]
        if not bad:
            good.append(output)
        for node_id in bad:
            entry = node_errors.setdefault(node_id, {"errors": errors[node_id], "dependent_outputs": [],
                                                     "class_type": graph[node_id]["class_type"]})
            entry["dependent_outputs"].append(output)
    if not good:
        error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                 "details": "", "extra_info": {}}
        raise Rejected({"error": error, "node_errors": node_errors})
    return good, node_errors
