"""What the panel's pipeline builder asks of the server: the palette of step kinds (fields, value types, the models
each kind takes with their availability) and the check of a definition without saving it (every error with its step
and field, the YAML form and the JSON form of it, the estimate, warnings for models that cannot run here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from reelflow.core.availability import availability
from reelflow.core.catalog import load_catalog
from reelflow.core.pipeline import check as checks
from reelflow.core.pipeline.definition import OUTPUTS, InputType, PipelineDefinition, StepKind
from reelflow.core.pipeline.estimate import estimate as price
from reelflow.core.pipeline.graph import find_cycle
from reelflow.core.pipeline.load import _message, _step_name, from_mapping, parse_text
from reelflow.errors import PipelineDefinitionError, SpecError

Error = PipelineDefinitionError

LABELS: dict[str, tuple[str, str]] = {
    "generate_image": ("Generate image", "An image from a prompt."),
    "edit_image": ("Edit image", "An image changed by an instruction."),
    "enhance_prompt": ("Enhance prompt", "A prompt rewritten by a language model."),
    "image_to_video": ("Image to video", "A clip from an image (or from text, with a t2v model)."),
    "extend": ("Extend video", "More clips, each from the last frame of the one before."),
    "concat": ("Join clips", "Clips joined in order, with optional crossfades."),
    "comfyui": ("ComfyUI workflow", "A registered ComfyUI workflow on your GPU."),
    "approve": ("Approval", "A person approves, rejects or asks for a redo of a step's output."),
}
LIST_FIELDS = frozenset({"videos"})
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "pipelines"
"""The example definitions the builder offers as templates (present in a checkout or an sdist)."""
PLACEHOLDERS: dict[str, Any] = {"text": "text given at run time", "texts": ["one item"], "image": checks.RUN_TIME_IMAGE,
                                "number": 1}


def _models_of(kind: str) -> list[str]:
    catalog = load_catalog().models
    if kind in ("concat", "approve"):
        return []
    return [m.id for m in checks.step_models(kind, catalog)]


def palette() -> dict[str, Any]:
    """Every step kind: its fields (required or not, the value type a reference must carry, whether it is a list),
    its outputs, its params and the catalog models it takes; the input types a pipeline can declare."""
    kinds = []
    for kind in get_args(StepKind):
        required, optional = checks.FIELDS[kind]
        fields = [{"name": name, "required": name in required, "type": checks.FIELD_TYPES.get(name),
                   "list": name in LIST_FIELDS} for name in sorted(required | optional, key=_field_order)]
        label, description = LABELS[kind]
        kinds.append({"kind": kind, "label": label, "description": description, "fields": fields,
                      "outputs": OUTPUTS[kind], "params": list(checks.PARAMS[kind]), "models": _models_of(kind)})
    models = []
    for model in load_catalog().models:
        found = availability(model)
        models.append({"id": model.id, "name": model.name, "kind": model.kind, "backend": model.backend,
                       "inputs": model.inputs.model_dump(mode="json", exclude_none=True),
                       "price": model.price.text(), "available": found.available, "missing": found.missing})
    templates = [{"name": path.stem, "yaml": path.read_text(encoding="utf-8")}
                 for path in sorted(EXAMPLES.glob("*.yaml"))] if EXAMPLES.is_dir() else []
    return {"kinds": kinds, "input_types": list(get_args(InputType)), "models": models, "templates": templates}


_ORDER = ("model", "target", "for_each", "variants", "times", "prompt", "negative_prompt", "image", "end_image",
          "video", "videos", "timeout", "on_timeout", "params")


def _field_order(name: str) -> int:
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


def _structure_errors(exc: ValidationError, data: Mapping[str, Any]) -> list[Error]:
    """Every error pydantic found in the definition's structure, located as ``load`` locates the first."""
    found = []
    for error in exc.errors():
        loc = list(error["loc"])
        message = _message(error, data)
        if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
            found.append(Error(_step_name(data, loc[1]), ".".join(str(p) for p in loc[2:]) or "step", message))
        else:
            found.append(Error(None, ".".join(str(p) for p in loc) or "definition", message))
    return found


def definition_errors(definition: PipelineDefinition) -> list[Error]:
    """Every problem ``check_definition`` would raise one at a time: each input and each step checked on its own
    (a step whose fields, model or references are wrong is not type- or param-checked, as those assume them)."""
    found: list[Error] = []
    bad: set[str | None] = set()

    def attempt(step: str | None, check: Callable[[], None]) -> None:
        try:
            check()
        except Error as exc:
            found.append(exc)
            bad.add(step)
        except (KeyError, ValueError, TypeError):  # a consequence of an error found already
            bad.add(step)

    for name, spec in definition.inputs.items():
        attempt(None, lambda name=name, spec=spec: checks._check_input(name, spec))  # type: ignore[misc]
    ids = {step.id for step in definition.steps}
    for step in definition.steps:
        for stage in (checks._check_fields, checks._check_model):
            if step.id not in bad:
                attempt(step.id, lambda stage=stage, step=step: stage(step))  # type: ignore[misc]
        if step.id not in bad:
            attempt(step.id, lambda step=step: checks._check_reference_targets(definition, step, ids))  # type: ignore[misc]
    if not bad and (cycle := find_cycle(definition)):
        found.append(Error(cycle[0], checks._cycle_field(definition, cycle[0], cycle[1]),
                           "the steps form a cycle: " + " -> ".join(cycle)))
        return found
    for step in definition.steps:
        if step.id not in bad:
            attempt(step.id, lambda step=step: checks._check_types(definition, step))  # type: ignore[misc]
        if step.id not in bad:
            attempt(step.id, lambda step=step: checks._check_params(definition, step))  # type: ignore[misc]
    if not found:
        attempt(None, lambda: checks._check_approvals_are_waited_for(definition))
        for name, ref in (definition.outputs or {}).items():
            attempt(None, lambda name=name, ref=ref: checks._check_output(definition, name, ref, ids))  # type: ignore[misc]
    return found


def _error_json(error: Error) -> dict[str, Any]:
    return {"step": error.step, "field": error.step_field, "message": error.message}


def to_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100)


def _run_time_inputs(definition: PipelineDefinition, given: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs to price with: those given, and a stand-in for each required one not given."""
    filled = dict(given)
    for name, spec in definition.inputs.items():
        if filled.get(name) is None and spec.default is None:
            filled[name] = (spec.choices or [""])[0] if spec.type == "choice" else PLACEHOLDERS[spec.type]
    return filled


def model_warnings(definition: PipelineDefinition | Mapping[str, Any]) -> list[dict[str, Any]]:
    """A step whose model cannot run here (no key, no GPU set up): saved, but it would fail when run."""
    if not isinstance(definition, PipelineDefinition):
        try:
            definition = PipelineDefinition.model_validate(dict(definition))
        except ValidationError:
            return []
    by_id = {m.id: m for m in load_catalog().models}
    found = []
    for step in definition.steps:
        model = by_id.get(step.model or "")
        if model is None:
            continue
        missing = availability(model).missing
        if missing:
            found.append({"step": step.id, "field": "model", "message": f"model '{model.id}' cannot run here yet: "
                          + "; ".join(missing)})
    return found


def check(given: Mapping[str, Any] | str, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The definition (YAML text or a mapping) checked without saving: ``errors`` (all of them), ``warnings``,
    ``definition`` (JSON) and ``yaml`` (each the other's form; as given when it does not parse), ``estimate``."""
    try:
        data = parse_text(given) if isinstance(given, str) else dict(given)
    except Error as exc:
        return {"valid": False, "errors": [_error_json(exc)], "warnings": [], "definition": None,
                "yaml": given if isinstance(given, str) else None, "estimate": None}
    try:
        PipelineDefinition.model_validate(data)  # from_mapping would say only the first problem
        definition = from_mapping(data)
    except ValidationError as exc:
        errors = _structure_errors(exc, data)
    except Error as exc:  # duplicate step ids
        errors = [exc]
    else:
        errors = definition_errors(definition)
        shown = definition.model_dump(mode="json", exclude_defaults=True)
        estimate = None
        if not errors:
            try:
                estimate = {"pipeline": definition.name,
                            **price(definition, _run_time_inputs(definition, inputs or {})).as_json()}
            except SpecError as exc:
                errors = [exc if isinstance(exc, Error) else Error(None, exc.field, exc.message)]
        return {"valid": not errors, "errors": [_error_json(e) for e in errors], "warnings": model_warnings(definition),
                "definition": shown, "yaml": given if isinstance(given, str) else to_yaml(shown),
                "estimate": estimate}
    return {"valid": False, "errors": [_error_json(e) for e in errors], "warnings": [], "definition": data,
            "yaml": given if isinstance(given, str) else to_yaml(data), "estimate": None}
