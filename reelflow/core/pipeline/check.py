"""Checking a whole definition before anything runs or is paid, and resolving the inputs given to it.

Every problem is one ``PipelineDefinitionError`` naming the step (None for the pipeline's inputs) and the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from reelflow.core.catalog import ModelEntry, load_catalog
from reelflow.core.catalog.models import KIND_NAMES, parse_size
from reelflow.core.pipeline.definition import (
    INPUT_NAME,
    MAX_FAN_OUT,
    InputDef,
    PipelineDefinition,
    StepDef,
    ValueType,
    is_reference,
    literal_text,
    parse_ref,
)
from reelflow.core.pipeline.graph import Value, find_cycle, is_fan_out, is_list, outputs_of, references, value_of
from reelflow.core.spec import (
    MAX_SEED,
    PipelineSpec,
    _check_resolution,
    _check_text,
    check_spec,
)
from reelflow.errors import PipelineDefinitionError, SpecError

Error = PipelineDefinitionError

MODEL_KINDS: dict[str, tuple[str, ...]] = {
    "generate_image": ("t2i",), "edit_image": ("i2i",), "enhance_prompt": ("llm",),
    "image_to_video": ("i2v", "t2v"), "extend": ("i2v",),
}
"""The catalog kinds a step kind's model may have (comfyui: any model on the comfyui backend)."""

FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required, allowed besides id/kind)
    "generate_image": (frozenset({"model", "prompt"}),
                       frozenset({"negative_prompt", "for_each", "variants", "params"})),
    "edit_image": (frozenset({"model", "image", "prompt"}), frozenset({"for_each", "variants", "params"})),
    "enhance_prompt": (frozenset({"model", "prompt"}), frozenset({"for_each", "variants", "params"})),
    "image_to_video": (frozenset({"model"}),
                       frozenset({"prompt", "negative_prompt", "image", "end_image", "for_each", "variants",
                                  "params"})),
    "extend": (frozenset({"model", "video"}), frozenset({"prompt", "negative_prompt", "times", "params"})),
    "concat": (frozenset({"videos"}), frozenset({"params"})),
    "comfyui": (frozenset({"model"}),  # and image or video: what its workflow takes (``_check_model``)
                frozenset({"image", "video", "prompt", "negative_prompt", "for_each", "variants", "params"})),
    "approve": (frozenset({"target"}), frozenset({"timeout", "on_timeout"})),
}

VIDEO_PARAMS = ("duration", "frames", "fps", "resolution", "seed", "audio")
PARAMS: dict[str, tuple[str, ...]] = {
    "generate_image": ("resolution", "seed"),
    "edit_image": ("seed",),
    "enhance_prompt": ("style", "seed"),
    "image_to_video": VIDEO_PARAMS,
    "extend": VIDEO_PARAMS,
    "comfyui": VIDEO_PARAMS,
    "concat": ("crossfade", "fps", "resolution"),
    "approve": (),
}
"""The params each kind of step takes (a comfyui step whose workflow is not image-to-video: ``MEDIA_PARAMS``)."""
MEDIA_PARAMS = ("seed",)

FIELD_TYPES: dict[str, ValueType] = {"prompt": "text", "negative_prompt": "text", "image": "image",
                               "end_image": "image", "video": "video", "videos": "video"}
MAX_CROSSFADE_S = 10.0
MAX_CONCAT_FPS = 120
PROMPT_PLACEHOLDER = "text given at run time"
RUN_TIME_IMAGE = "https://example.com/image-given-at-run-time.png"
_INPUT_NAME = re.compile(INPUT_NAME)


def check_definition(definition: PipelineDefinition) -> None:
    """Raise ``PipelineDefinitionError`` for the first problem: an unknown kind or model, a bad or dangling
    reference, a cycle, a type mismatch, params the model does not take or out of its range."""
    for name, spec in definition.inputs.items():
        _check_input(name, spec)
    ids: set[str] = set()
    for step in definition.steps:
        if step.id in ids:
            raise Error(step.id, "id", f"'{step.id}' is used by more than one step; step ids must be unique")
        ids.add(step.id)
    for step in definition.steps:
        _check_fields(step)
        _check_model(step)
        _check_reference_targets(definition, step, ids)
    if cycle := find_cycle(definition):
        raise Error(cycle[0], _cycle_field(definition, cycle[0], cycle[1]),
                    "the steps form a cycle: " + " -> ".join(cycle) + "; a step can only take outputs of steps "
                    "that do not depend on it")
    for step in definition.steps:
        _check_types(definition, step)
        _check_params(definition, step)
    _check_approvals_are_waited_for(definition)
    for name, ref in (definition.outputs or {}).items():
        _check_output(definition, name, ref, ids)


def _cycle_field(definition: PipelineDefinition, step_id: str, needs: str) -> str:
    step = definition.step(step_id)
    if step.kind == "approve" and step.target == needs:
        return "target"
    for field, text in references(step):
        ref = parse_ref(text)
        if ref is not None and ref.name == needs and ref.source == "step":
            return field
    return "steps"


# inputs -----------------------------------------------------------------------------------------------------


def _check_input(name: str, spec: InputDef) -> None:
    field = f"inputs.{name}"
    if not _INPUT_NAME.match(name):
        raise Error(None, field, f"'{name}' is not allowed as an input name; allowed: lowercase letters, digits "
                    "and _, starting with a letter, at most 40")
    if spec.type == "choice" and not spec.choices:
        raise Error(None, f"{field}.choices", "a choice input needs its list of choices")
    if spec.type != "choice" and spec.choices is not None:
        raise Error(None, f"{field}.choices", f"only a choice input has choices; this one is {spec.type}")
    if spec.type != "number" and (spec.min is not None or spec.max is not None):
        raise Error(None, f"{field}.min", f"only a number input has min and max; this one is {spec.type}")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise Error(None, f"{field}.min", f"{spec.min:g} is larger than max {spec.max:g}")
    if spec.default is not None:
        try:
            convert_input(name, spec, spec.default)
        except Error as exc:
            raise Error(None, f"{field}.default", exc.message) from None


def convert_input(name: str, spec: InputDef, value: Any) -> Any:
    """One input's value in its type: numbers from text (``"2.5"``), texts from a JSON list (``'["a","b"]'``) or
    ``a|b|c``; an image stays its path or URL text."""
    field = f"inputs.{name}"
    if spec.type in ("text", "image", "choice"):
        if not isinstance(value, str):
            raise Error(None, field, f"must be a text; got {type(value).__name__}")
        if spec.type == "image" and not value.strip():
            raise Error(None, field, "must be a path or an http(s) URL of an image")
        if spec.type == "choice" and value not in (spec.choices or []):
            raise Error(None, field, f"'{value}' is not a choice; allowed: " + ", ".join(spec.choices or []))
        return value
    if spec.type == "texts":
        items = _texts(field, value)
        if not 1 <= len(items) <= MAX_FAN_OUT:
            raise Error(None, field, f"has {len(items)} items; allowed 1-{MAX_FAN_OUT}")
        return items
    return _number(field, spec, value)


def _texts(field: str, value: Any) -> list[str]:
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise Error(None, field, f"is not a JSON list of texts ({exc.msg}); or write a|b|c") from None
        else:
            value = value.split("|")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise Error(None, field, 'must be a list of texts: a JSON list (["a", "b"]) or a|b|c')
    return list(value)


def _number(field: str, spec: InputDef, value: Any) -> float | int:
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise Error(None, field, f"'{value}' is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Error(None, field, f"must be a finite number; got {value!r}")
    if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
        low = "-inf" if spec.min is None else f"{spec.min:g}"
        high = "inf" if spec.max is None else f"{spec.max:g}"
        raise Error(None, field, f"{value:g} is out of range; allowed {low} to {high}")
    return value


def resolve_inputs(definition: PipelineDefinition, given: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs a run uses: ``given`` converted to each input's type (see ``convert_input``), defaults for the
    rest; unknown names and missing required inputs refused."""
    unknown = sorted(set(given) - set(definition.inputs))
    if unknown:
        allowed = ", ".join(definition.inputs) or "none (this pipeline has no inputs)"
        raise Error(None, f"inputs.{unknown[0]}", f"is not an input of pipeline '{definition.name}'; allowed: "
                    + allowed)
    resolved: dict[str, Any] = {}
    for name, spec in definition.inputs.items():
        if name in given and given[name] is not None:
            resolved[name] = convert_input(name, spec, given[name])
        elif spec.default is not None:
            resolved[name] = convert_input(name, spec, spec.default)
        elif spec.required is not False:
            raise Error(None, f"inputs.{name}", f"is required ({spec.type}); give it, e.g. --input {name}=...")
    return resolved


# steps: fields and models -----------------------------------------------------------------------------------


def _given(step: StepDef) -> set[str]:
    return {name for name in step.model_fields_set - {"id", "kind"} if getattr(step, name) not in (None, {}, [])}


def _check_fields(step: StepDef) -> None:
    required, optional = FIELDS[step.kind]
    given = _given(step)
    for field in sorted(required - given):
        what = {"model": "a model id (`reelflow models`)", "videos": "a list of video references"}.get(field,
                                                                                                     "a reference")
        raise Error(step.id, field, f"is required for {_a(step.kind)} step: {what}")
    for field in sorted(given - required - optional):
        allowed = ", ".join(sorted(required | optional))
        raise Error(step.id, field, f"is not used by {_a(step.kind)} step; allowed: {allowed}")
    if step.for_each is not None and step.variants is not None:
        raise Error(step.id, "variants", "give for_each or variants, not both")


def step_models(kind: str, models: list[ModelEntry]) -> list[ModelEntry]:
    """The catalog models a step of ``kind`` may use: a comfyui step any registered workflow; other kinds the
    models of their catalog kinds, ComfyUI workflows only if image-to-video (the others run as comfyui steps)."""
    if kind == "comfyui":
        return [m for m in models if m.backend == "comfyui"]
    return [m for m in models if m.kind in MODEL_KINDS.get(kind, ()) and (m.backend != "comfyui" or m.kind == "i2v")]


def model_entry(step: StepDef) -> ModelEntry | None:
    """The catalog entry of the step's model (None for concat and approve), checked to suit its kind."""
    if step.kind in ("concat", "approve"):
        return None
    catalog = load_catalog()
    choices = step_models(step.kind, catalog.models)
    if step.kind == "comfyui":
        what = "ComfyUI workflow"
    else:
        what = f"{KIND_NAMES.get(MODEL_KINDS[step.kind], 'model')} ({'/'.join(MODEL_KINDS[step.kind])})"
    found = next((m for m in choices if m.id == step.model), None)
    if found is None:
        allowed = ", ".join(m.id for m in choices) or (
            "none registered (`reelflow workflows add`)" if step.kind == "comfyui" else "none in the catalog yet")
        elsewhere = next((m for m in catalog.models if m.id == step.model), None)
        why = (f"'{step.model}' is a ComfyUI workflow ({elsewhere.kind}); run it as a comfyui step"
               if elsewhere and elsewhere.backend == "comfyui"
               else f"'{step.model}' is {_a(KIND_NAMES.get((elsewhere.kind,), 'model'))} ({elsewhere.kind}), not "
               f"{_a(what)} for {_a(step.kind)} step" if elsewhere
               else f"unknown {what} '{step.model}'")
        raise Error(step.id, "model", f"{why}; allowed: {allowed}")
    return found


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _check_model(step: StepDef) -> None:
    model = model_entry(step)
    if model is not None and step.kind == "comfyui":
        _check_workflow_input(step, model)
    if model is None or step.kind != "image_to_video":
        return
    if model.kind == "t2v" and step.image is not None:
        raise Error(step.id, "image", f"model '{model.id}' makes video from text only; leave image out or choose "
                    "an i2v model")
    if model.kind == "i2v" and step.image is None:
        raise Error(step.id, "image", f"is required: model '{model.id}' animates an image (give a reference, e.g. "
                    "$inputs.image or $keyframe.image)")


def _check_workflow_input(step: StepDef, model: ModelEntry) -> None:
    """A comfyui step gives its workflow what it takes: ``image`` or ``video``, not the other."""
    wanted = model.input_kind
    other = "video" if wanted == "image" else "image"
    if getattr(step, other) is not None:
        raise Error(step.id, other, f"workflow '{model.id}' takes {_a(wanted)}, not {_a(other)}; give {wanted}: "
                    f"(a reference) instead of {other}:")
    if getattr(step, wanted) is None:
        example = "$inputs.photo or $keyframe.image" if wanted == "image" else "$clip.video"
        raise Error(step.id, wanted, f"is required: workflow '{model.id}' takes {_a(wanted)} (give a reference, "
                    f"e.g. {example})")


# steps: references and types --------------------------------------------------------------------------------


def _check_reference_targets(definition: PipelineDefinition, step: StepDef, ids: set[str]) -> None:
    if step.kind == "approve":
        if step.target not in ids:
            raise Error(step.id, "target", f"'{step.target}' is not a step; allowed: "
                        + ", ".join(sorted(ids - {step.id})))
        if step.target == step.id:
            raise Error(step.id, "target", "an approve step cannot judge itself")
        if definition.step(step.target).kind in ("approve",):
            raise Error(step.id, "target", f"'{step.target}' is an approve step; judge the step that makes "
                        "something (image, video or text)")
    for field, text in references(step):
        if not is_reference(text):
            if field in ("prompt", "negative_prompt"):
                continue
            raise Error(step.id, field, f"'{literal_text(text)}' is not a reference; allowed: $inputs.<name> or "
                        "$<step>.<output> (declare an input to give a file or URL)")
        ref = parse_ref(text)
        if ref is None:
            raise Error(step.id, field, f"'{text}' is not a reference; allowed: $inputs.<name>, $<step>.<output>, "
                        "$<step>[<i>].<output>, $item, $index (and $$ for a literal $)")
        if ref.source == "input" and ref.name not in definition.inputs:
            allowed = ", ".join(definition.inputs) or "none (declare it under inputs)"
            raise Error(step.id, field, f"'{text}' names no input of this pipeline; inputs: {allowed}")
        if ref.source in ("item", "index") and (step.for_each is None or field == "for_each"):
            raise Error(step.id, field, f"'{text}' is only meaningful in a step with for_each")
        if ref.source == "step" and ref.name not in ids:
            raise Error(step.id, field, f"'{text}' names no step; steps: " + ", ".join(sorted(ids)))


def _check_types(definition: PipelineDefinition, step: StepDef) -> None:
    for field, text in references(step):
        if not is_reference(text):
            continue
        ref = parse_ref(text)
        assert ref is not None  # checked in _check_reference_targets
        if ref.source == "step":
            made = outputs_of(definition, ref.name or "")
            if ref.output not in made:
                source = definition.step(ref.name or "")
                raise Error(step.id, field, f"'{text}': step '{ref.name}' ({source.kind}) has no output "
                            f"'{ref.output}'; it makes: " + (", ".join(made) or "nothing"))
            if ref.index is not None:
                _check_index(definition, step, field, text, ref.name or "", ref.index)
        value = value_of(definition, ref, step.id)
        _check_value(definition, step, field, text, value)


def _check_index(definition: PipelineDefinition, step: StepDef, field: str, text: str, source: str,
                 index: int) -> None:
    if not is_fan_out(definition, source):
        raise Error(step.id, field, f"'{text}': step '{source}' makes one item, not a list; leave out [{index}]")
    target = definition.step(source)
    if target.kind == "approve":
        target = definition.step(target.target or "")
    known = target.variants or (target.times if target.kind == "extend" else None)
    if known is not None and index >= known:
        raise Error(step.id, field, f"'{text}': step '{source}' makes {known} items; allowed [0]-[{known - 1}]")


def _check_value(definition: PipelineDefinition, step: StepDef, field: str, text: str, value: Value) -> None:
    if field == "for_each":
        if not is_list(value):
            raise Error(step.id, field, f"'{text}' is {value.text()}, not a list; for_each takes a texts input or "
                        "the output of a step that fans out")
        return
    wanted = FIELD_TYPES[field]
    single = Value(value.type if value.type != "texts" else "text")
    if field in ("prompt", "negative_prompt"):
        if value.type not in ("text", "number") or is_list(value):
            raise Error(step.id, field, f"'{text}' is {value.text()}; {field} takes text (a text input, an "
                        "enhance_prompt output, $item of a texts list, $index)")
        return
    if single.type != wanted:
        raise Error(step.id, field, f"'{text}' is {value.text()}; {field} takes {Value(wanted).text()}")
    if is_list(value) and field != "videos":
        ref = parse_ref(text)
        one = f"${ref.name}[0].{ref.output}" if ref is not None and ref.source == "step" else "one item"
        hint = "use $item" if step.for_each else f"take one item ({one})"
        raise Error(step.id, field, f"'{text}' is {value.text()} (its step fans out); {field} takes one {wanted}: "
                    f"{hint}, or fan out over it with for_each")


def _check_approvals_are_waited_for(definition: PipelineDefinition) -> None:
    """A step must take an approved step's output through its approve step, or it would start (and pay)
    before the answer."""
    approvals = {step.target: step.id for step in definition.steps if step.kind == "approve"}
    for step in definition.steps:
        if step.kind == "approve":
            continue
        for field, text in references(step):
            ref = parse_ref(text) if is_reference(text) else None
            if ref is not None and ref.source == "step" and ref.name in approvals:
                approve = approvals[ref.name]
                index = "" if ref.index is None else f"[{ref.index}]"
                raise Error(step.id, field, f"'{text}' takes the output of '{ref.name}' before '{approve}' approves "
                            f"it; take ${approve}{index}.{ref.output} so this step waits for the answer")


def _check_output(definition: PipelineDefinition, name: str, ref_text: str, ids: set[str]) -> None:
    field = f"outputs.{name}"
    ref = parse_ref(ref_text) if is_reference(ref_text) else None
    if ref is None or ref.source != "step":
        raise Error(None, field, f"'{ref_text}' is not a step output reference; allowed: $<step>.<output> or "
                    "$<step>[<i>].<output>")
    if ref.name not in ids:
        raise Error(None, field, f"'{ref_text}' names no step; steps: " + ", ".join(sorted(ids)))
    made = outputs_of(definition, ref.name)
    if ref.output not in made:
        raise Error(None, field, f"'{ref_text}': step '{ref.name}' has no output '{ref.output}'; it makes: "
                    + (", ".join(made) or "nothing"))


# steps: params ----------------------------------------------------------------------------------------------


def _check_params(definition: PipelineDefinition, step: StepDef) -> None:
    model = model_entry(step)
    media_workflow = step.kind == "comfyui" and model is not None and model.kind != "i2v"
    allowed = MEDIA_PARAMS if media_workflow else PARAMS[step.kind]
    for name, value in step.params.items():
        if name not in allowed:
            listed = ", ".join(allowed) or "none"
            raise Error(step.id, f"params.{name}", f"'{name}' is not a param of {_a(step.kind)} step; allowed: "
                        + listed)
        if is_reference(value):
            raise Error(step.id, f"params.{name}", "params take literal values, not references")
    seed = step.params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise Error(step.id, "params.seed", f"{seed!r} is not allowed; a whole number 0-{MAX_SEED}")
    if seed is not None and model is not None and not model.inputs.seed:
        raise Error(step.id, "params.seed", f"model '{model.id}' does not take a seed; leave it out")
    if step.variants is not None and model is not None and not model.inputs.seed:
        raise Error(step.id, "variants", f"model '{model.id}' does not take a seed, so its variants would be "
                    "identical; leave variants out")
    if step.kind == "concat":
        _check_concat(step)
    elif media_workflow and model is not None:
        _check_workflow_texts(step, model)
    elif step.kind == "generate_image" and model is not None:
        _check_image_step(step, model)
    elif step.kind in ("edit_image", "enhance_prompt") and model is not None:
        _check_instruction(step, model)
    elif step.kind in ("image_to_video", "extend", "comfyui") and model is not None:
        _check_video_step(step, model)


def _text_probe(value: str | list[str] | None) -> str | None:
    """The text as the model would see it when every part is literal; a placeholder when parts come later."""
    if value is None:
        return None
    parts = [value] if isinstance(value, str) else value
    if any(is_reference(part) for part in parts):
        return PROMPT_PLACEHOLDER
    return "".join(literal_text(part) for part in parts)


def _spec_error(step: StepDef, exc: SpecError) -> Error:
    field = f"params.{exc.field}" if exc.field in step.params else exc.field
    return Error(step.id, field, exc.message)


def _check_image_step(step: StepDef, model: ModelEntry) -> None:
    if step.negative_prompt is not None and not model.inputs.negative_prompt:
        raise Error(step.id, "negative_prompt", f"model '{model.id}' does not take a negative prompt; leave it out")
    try:
        _check_text("image_prompt", _text_probe(step.prompt) or "", model.inputs.prompt_max_chars)
        resolution = step.params.get("resolution")
        if resolution is not None:
            if not isinstance(resolution, str):
                raise SpecError("resolution", f"{resolution!r} must be a text such as 1024x768")
            _check_resolution(resolution, model)
    except SpecError as exc:
        field = "prompt" if exc.field == "image_prompt" else exc.field
        raise _spec_error(step, SpecError(field, exc.message)) from None


def _check_workflow_texts(step: StepDef, model: ModelEntry) -> None:
    """A prompt (and negative prompt) only for a workflow that has somewhere to put it, and then a prompt is due."""
    if step.prompt is not None and model.inputs.prompt == "unused":
        raise Error(step.id, "prompt", f"workflow '{model.id}' takes no prompt (it was registered without --prompt); "
                    "leave it out")
    if step.prompt is None and model.inputs.prompt == "required":
        raise Error(step.id, "prompt", f"is required: workflow '{model.id}' puts a prompt into its graph")
    if step.negative_prompt is not None and not model.inputs.negative_prompt:
        raise Error(step.id, "negative_prompt", f"workflow '{model.id}' takes no negative prompt; leave it out")
    if step.prompt is not None:
        try:
            _check_text("prompt", _text_probe(step.prompt) or "", model.inputs.prompt_max_chars)
        except SpecError as exc:
            raise _spec_error(step, exc) from None


def _check_instruction(step: StepDef, model: ModelEntry) -> None:
    style = step.params.get("style")
    if style is not None and not isinstance(style, str):
        raise Error(step.id, "params.style", f"{style!r} must be a text (a style to rewrite the prompt in)")
    try:
        _check_text("prompt", _text_probe(step.prompt) or "", model.inputs.prompt_max_chars)
    except SpecError as exc:
        raise _spec_error(step, exc) from None


def _check_video_step(step: StepDef, model: ModelEntry) -> None:
    """The step's would-be one-video spec, checked by ``check_spec`` as ``reelflow run`` checks it (its images
    are given at run time: only whether there are any, and the settings, are checked here)."""
    fields: dict[str, Any] = {"model": model.id, "prompt": _text_probe(step.prompt) or "",
                              "negative_prompt": _text_probe(step.negative_prompt), **step.params}
    if model.kind != "t2v":
        fields["image"] = RUN_TIME_IMAGE
    if step.end_image is not None:
        fields["end_image"] = RUN_TIME_IMAGE
    try:
        spec = PipelineSpec.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "params"
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:
            field, _, message = message.partition(": ")
        raise _spec_error(step, SpecError(field, f"{message} (got {first.get('input')!r})")) from None
    try:
        check_spec(spec)
    except SpecError as exc:
        raise _spec_error(step, exc) from None


def _check_concat(step: StepDef) -> None:
    params = step.params
    crossfade = params.get("crossfade")
    if crossfade is not None and (isinstance(crossfade, bool) or not isinstance(crossfade, int | float)
                                  or not 0 <= crossfade <= MAX_CROSSFADE_S):
        raise Error(step.id, "params.crossfade", f"{crossfade!r} is out of range; allowed 0-{MAX_CROSSFADE_S:g} "
                    "seconds")
    fps = params.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_CONCAT_FPS):
        raise Error(step.id, "params.fps", f"{fps!r} is out of range; allowed a whole number 1-{MAX_CONCAT_FPS}")
    resolution = params.get("resolution")
    if resolution is not None:
        size = parse_size(resolution) if isinstance(resolution, str) else None
        if size is None or not (16 <= size[0] <= 4096 and 16 <= size[1] <= 4096) or size[0] % 2 or size[1] % 2:
            raise Error(step.id, "params.resolution", f"{resolution!r} is not allowed; allowed WIDTHxHEIGHT, even "
                        "numbers 16-4096 (e.g. 1280x720)")
