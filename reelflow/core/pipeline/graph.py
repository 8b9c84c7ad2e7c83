"""Stand-in for C1a's graph helpers (s20-pdef) until they land."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from reelflow.core.pipeline.definition import PipelineDefinition, StepDef, is_reference, parse_ref
from reelflow.errors import PipelineDefinitionError


def _texts(step: StepDef) -> list[str]:
    values: list[str] = []
    for value in (step.for_each, step.prompt, step.negative_prompt, step.image, step.end_image, step.video,
                  step.videos):
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, list):
            values.extend(v for v in value if isinstance(v, str))
    values.extend(v for v in step.params.values() if isinstance(v, str))
    return values


def step_dependencies(definition: PipelineDefinition) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for step in definition.steps:
        deps = {ref.name for ref in (parse_ref(v) for v in _texts(step) if is_reference(v))
                if ref is not None and ref.source == "step" and ref.name}
        if step.kind == "approve" and step.target:
            deps.add(step.target)
        found[step.id] = deps
    return found


def topological_order(definition: PipelineDefinition) -> list[str]:
    try:
        return list(TopologicalSorter(step_dependencies(definition)).static_order())
    except CycleError as exc:
        raise PipelineDefinitionError(str(exc.args[1][0]), "steps", "the steps form a cycle") from None
