"""Stand-in for C1a's checks (s20-pdef) until they land: the references, models and inputs the engine relies on."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reelflow.core.catalog import load_catalog
from reelflow.core.pipeline.definition import PipelineDefinition
from reelflow.core.pipeline.graph import step_dependencies, topological_order
from reelflow.core.spec import PipelineSpec, check_spec
from reelflow.errors import PipelineDefinitionError, SpecError

MODEL_KINDS = {"generate_image": "t2i", "edit_image": "i2i", "enhance_prompt": "llm", "image_to_video": "i2v",
               "extend": "i2v"}


def check_definition(definition: PipelineDefinition) -> None:
    ids = [step.id for step in definition.steps]
    for step in definition.steps:
        if ids.count(step.id) > 1:
            raise PipelineDefinitionError(step.id, "id", "is used by two steps")
        for dep in step_dependencies(definition)[step.id]:
            if dep not in ids:
                raise PipelineDefinitionError(step.id, "references", f"no step '{dep}'")
        if step.kind in MODEL_KINDS and step.model:
            try:
                load_catalog().get(step.model, kind=MODEL_KINDS[step.kind])
            except SpecError as exc:
                raise PipelineDefinitionError(step.id, "model", exc.message) from None
        if step.kind in ("image_to_video", "extend") and step.model:
            literal = {k: v for k, v in step.params.items() if (k in ("duration", "frames", "fps", "resolution")
                       and not isinstance(v, str)) or k == "resolution"}
            try:
                check_spec(PipelineSpec.model_validate({"model": step.model, "image": "x", "prompt": "x", **literal}))
            except (SpecError, ValueError) as exc:
                raise PipelineDefinitionError(step.id, f"params.{getattr(exc, 'field', '')}",
                                              getattr(exc, "message", str(exc))) from None
    topological_order(definition)


def resolve_inputs(definition: PipelineDefinition, given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(definition.inputs))
    if unknown:
        raise PipelineDefinitionError(None, f"inputs.{unknown[0]}", "is not an input of this pipeline; allowed: "
                                      + ", ".join(definition.inputs))
    resolved: dict[str, Any] = {}
    for name, spec in definition.inputs.items():
        value = given.get(name, spec.default)
        if value is None:
            if spec.required is not False:
                raise PipelineDefinitionError(None, f"inputs.{name}", "is required")
            continue
        if spec.type == "number" and isinstance(value, str):
            value = float(value)
        if spec.type == "texts" and isinstance(value, str):
            value = json.loads(value) if value.startswith("[") else value.split("|")
        resolved[name] = value
    return resolved
