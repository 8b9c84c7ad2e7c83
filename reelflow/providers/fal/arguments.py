"""Our resolved params mapped onto each fal endpoint's input schema.

The catalog says which inputs a model takes (durations, resolutions, seed, negative prompt); the
small table below holds only what the catalog cannot say: the image field's name, the duration
format and fixed inputs. Entries match by endpoint prefix, so sibling tiers (``veo3.1/fast``,
``kling-video/v3/standard``) share one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reelflow.core.catalog import ModelEntry
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.errors import SpecError


@dataclass(frozen=True)
class EndpointSchema:
    image_field: str = "image_url"
    duration_suffix: str = ""
    fixed: dict[str, Any] = field(default_factory=dict)


NO_AUDIO = {"generate_audio": False}
SCHEMAS: dict[str, EndpointSchema] = {
    "fal-ai/kling-video/v3/": EndpointSchema(image_field="start_image_url", fixed=NO_AUDIO),
    "fal-ai/kling-video/v2.6/": EndpointSchema(image_field="start_image_url", fixed=NO_AUDIO),
    "fal-ai/veo3.1/": EndpointSchema(duration_suffix="s", fixed=NO_AUDIO),
    "fal-ai/veo3/": EndpointSchema(duration_suffix="s", fixed=NO_AUDIO),
    "fal-ai/veo2/": EndpointSchema(duration_suffix="s"),
    "fal-ai/flux/": EndpointSchema(fixed={"num_images": 1}),
}


def schema_for(endpoint: str) -> EndpointSchema:
    matches = [prefix for prefix in SCHEMAS if endpoint.startswith(prefix)]
    return SCHEMAS[max(matches, key=len)] if matches else EndpointSchema()


def _duration(model: ModelEntry, seconds: float, suffix: str) -> str:
    allowed = model.inputs.durations
    if allowed is not None and seconds not in allowed:
        choices = ", ".join(f"{d:g}" for d in allowed)
        raise SpecError("duration", f"{model.id} takes {choices} seconds, not {seconds:g}")
    if not float(seconds).is_integer():
        raise SpecError("duration", f"{model.id} takes whole seconds, not {seconds:g}")
    return f"{int(seconds)}{suffix}"


def _video_arguments(model: ModelEntry, params: VideoParams, image_url: str | None,
                     schema: EndpointSchema) -> dict[str, Any]:
    if not image_url:
        raise SpecError("image", f"{model.id} needs an input image")
    inputs = model.inputs
    args: dict[str, Any] = {"prompt": params.prompt, schema.image_field: image_url}
    if inputs.durations is not None:
        args["duration"] = _duration(model, params.duration_s, schema.duration_suffix)
    if inputs.resolutions is not None and params.resolution is not None:
        if params.resolution not in inputs.resolutions:
            allowed = ", ".join(inputs.resolutions)
            raise SpecError("resolution", f"{model.id} takes {allowed}, not {params.resolution}")
        args["resolution"] = params.resolution
    if inputs.negative_prompt and params.negative_prompt:
        args["negative_prompt"] = params.negative_prompt
    if inputs.seed:
        args["seed"] = params.seed
    return args


def _image_arguments(model: ModelEntry, params: ImageParams) -> dict[str, Any]:
    args: dict[str, Any] = {"prompt": params.prompt,
                            "image_size": {"width": params.width, "height": params.height}}
    if model.inputs.seed:
        args["seed"] = params.seed
    return args


def build_arguments(model: ModelEntry, params: VideoParams | ImageParams,
                    image_url: str | None) -> dict[str, Any]:
    """The JSON body to submit to ``model.endpoint``; ``image_url`` is an https URL or a data URI."""
    if model.backend != "fal":
        raise SpecError("model", f"{model.id} runs on {model.backend}, not fal")
    schema = schema_for(model.endpoint)
    if model.kind == "i2v" and isinstance(params, VideoParams):
        args = _video_arguments(model, params, image_url, schema)
    elif model.kind == "t2i" and isinstance(params, ImageParams):
        args = _image_arguments(model, params)
    else:
        raise SpecError("model", f"{model.id} ({model.kind}) cannot take {type(params).__name__}")
    return {**args, **schema.fixed}
