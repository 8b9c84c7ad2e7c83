"""A one-line description of a checked definition: its steps in run order and how each fans out."""

from __future__ import annotations

from reelflow.core.pipeline.check import resolve_inputs
from reelflow.core.pipeline.definition import PipelineDefinition
from reelflow.core.pipeline.graph import fan_out_size, is_fan_out, topological_order
from reelflow.errors import PipelineDefinitionError


def summary(definition: PipelineDefinition) -> str:
    """E.g. ``story: valid, 4 steps: keyframe -> look -> shots ×3 (for_each $inputs.shots) -> film``."""
    try:
        inputs = resolve_inputs(definition, {})
    except PipelineDefinitionError:
        inputs = {}
    parts = []
    for step_id in topological_order(definition):
        step = definition.step(step_id)
        if not is_fan_out(definition, step_id):
            parts.append(step_id)
            continue
        size = fan_out_size(definition, step_id, inputs)
        count = "×?" if size is None else f"×{size}"
        how = (f"for_each {step.for_each}" if step.for_each else f"{step.variants} variants" if step.variants
               else f"extend {step.times} times" if step.kind == "extend" else f"judges {step.target}")
        parts.append(f"{step_id} {count} ({how})")
    steps = len(definition.steps)
    return f"{definition.name}: valid, {steps} step{'s' if steps != 1 else ''}: " + " -> ".join(parts)
