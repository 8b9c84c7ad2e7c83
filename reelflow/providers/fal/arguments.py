"""Our resolved params mapped onto a fal endpoint's input schema, from catalog data alone.

Each fal entry of the catalog says which inputs the model takes (``inputs``) and how the endpoint names
them (``fal``: image field, duration format, audio switch, fixed inputs), so a model registered with
``reelflow models add`` is built exactly like a curated one. ``sent_fields`` lists the field names and
choices an entry can send; the schema-drift test checks them against fal's published schemas.
"""

from __future__ import annotations

from typing import Any

from reelflow.core.catalog import ModelEntry
from reelflow.core.catalog.models import FalFields
from reelflow.core.domain import ImageParams, VideoParams
from reelflow.errors import SpecError

VIDEO_KINDS = ("i2v", "t2v")
IMAGE_KINDS = ("t2i", "i2i")


def fields_of(model: ModelEntry) -> FalFields:
    if model.backend != "fal":
        raise SpecError("model", f"{model.id} runs on {model.backend}, not fal")
    return model.fal or FalFields()


def _duration(model: ModelEntry, fields: FalFields, seconds: float) -> str:
    allowed = model.inputs.durations
    if allowed is not None and seconds not in allowed:
        choices = ", ".join(f"{d:g}" for d in allowed)
        raise SpecError("duration", f"{model.id} takes {choices} seconds, not {seconds:g}")
    if not float(seconds).is_integer():
        raise SpecError("duration", f"{model.id} takes whole seconds, not {seconds:g}")
    return fields.duration_text(seconds)


def _image(model: ModelEntry, fields: FalFields, image_url: str | None, args: dict[str, Any]) -> None:
    if fields.image_field is None or model.kind == "t2v":
        return
    if not image_url:
        raise SpecError("image", f"{model.id} needs an input image")
    args[fields.image_field] = [image_url] if fields.image_list else image_url


def _video_arguments(model: ModelEntry, fields: FalFields, params: VideoParams, image_url: str | None,
                     end_image_url: str | None) -> dict[str, Any]:
    inputs = model.inputs
    args: dict[str, Any] = {fields.prompt_field: params.prompt}
    _image(model, fields, image_url, args)
    if end_image_url is not None:
        if inputs.end_image == "unused" or fields.end_image_field is None:
            raise SpecError("end_image", f"{model.id} takes no end image")
        args[fields.end_image_field] = end_image_url
    elif inputs.end_image == "required":
        raise SpecError("end_image", f"{model.id} needs an end image (the last frame)")
    if fields.duration_field and (inputs.durations is not None or inputs.duration_range is not None):
        args[fields.duration_field] = _duration(model, fields, params.duration_s)
    if fields.resolution_field and inputs.resolutions is not None and params.resolution is not None:
        if params.resolution not in inputs.resolutions:
            allowed = ", ".join(inputs.resolutions)
            raise SpecError("resolution", f"{model.id} takes {allowed}, not {params.resolution}")
        args[fields.resolution_field] = params.resolution
    if fields.negative_prompt_field and inputs.negative_prompt and params.negative_prompt:
        args[fields.negative_prompt_field] = params.negative_prompt
    if fields.seed_field and inputs.seed:
        args[fields.seed_field] = params.seed
    if fields.audio_field:
        if params.audio and not inputs.audio:
            raise SpecError("audio", f"{model.id} cannot add audio")
        args[fields.audio_field] = bool(params.audio)  # sent when off too: such endpoints default to on (and paid)
    elif params.audio:
        raise SpecError("audio", f"{model.id} cannot add audio")
    return args


def _image_arguments(model: ModelEntry, fields: FalFields, params: ImageParams,
                     image_url: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {fields.prompt_field: params.prompt}
    if model.kind == "i2i":
        _image(model, fields, image_url, args)
    if fields.image_size_field:
        args[fields.image_size_field] = {"width": params.width, "height": params.height}
    if fields.seed_field and model.inputs.seed:
        args[fields.seed_field] = params.seed
    return args


def build_arguments(model: ModelEntry, params: VideoParams | ImageParams, image_url: str | None,
                    end_image_url: str | None = None) -> dict[str, Any]:
    """The JSON body to submit to ``model.endpoint``; image URLs are https URLs or data URIs."""
    fields = fields_of(model)
    if model.kind in VIDEO_KINDS and isinstance(params, VideoParams):
        args = _video_arguments(model, fields, params, image_url, end_image_url)
    elif model.kind in IMAGE_KINDS and isinstance(params, ImageParams):
        args = _image_arguments(model, fields, params, image_url)
    else:
        raise SpecError("model", f"{model.id} ({model.kind}) cannot take {type(params).__name__}")
    return {**args, **fields.fixed}


def sent_fields(model: ModelEntry) -> dict[str, list[Any] | None]:
    """Every input field ``model`` can send, with the values it can send where they are a fixed list."""
    fields, inputs = fields_of(model), model.inputs
    sent: dict[str, list[Any] | None] = {fields.prompt_field: None}
    if fields.image_field and model.kind in ("i2v", "i2i"):
        sent[fields.image_field] = None
    if fields.end_image_field and inputs.end_image != "unused":
        sent[fields.end_image_field] = None
    if model.kind in VIDEO_KINDS:
        if fields.duration_field and inputs.durations is not None:
            sent[fields.duration_field] = [fields.duration_text(d) for d in inputs.durations]
        elif fields.duration_field and inputs.duration_range is not None:
            sent[fields.duration_field] = None
        if fields.resolution_field and inputs.resolutions is not None:
            sent[fields.resolution_field] = list(inputs.resolutions)
        if fields.negative_prompt_field and inputs.negative_prompt:
            sent[fields.negative_prompt_field] = None
        if fields.audio_field:
            sent[fields.audio_field] = [False, True] if inputs.audio else [False]
    if fields.image_size_field and model.kind in IMAGE_KINDS:
        sent[fields.image_size_field] = None
    if fields.seed_field and inputs.seed:
        sent[fields.seed_field] = None
    for name, value in fields.fixed.items():
        sent[name] = [value]
    return sent
