"""The step graph of a definition: which steps feed which, an order to run them in, what each reference
carries and how many items a fan-out step makes. Assumes the references are well formed (``check`` says
when they are not)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reelflow.core.pipeline.definition import (
    OUTPUTS,
    PipelineDefinition,
    Ref,
    StepDef,
    ValueType,
    is_reference,
    parse_ref,
)
from reelflow.errors import PipelineDefinitionError

TEXT_FIELDS = ("prompt", "negative_prompt")
MEDIA_FIELDS = ("image", "end_image", "video")
INPUT_TYPES: dict[str, ValueType] = {"text": "text", "texts": "texts", "image": "image", "number": "number",
                                     "choice": "text"}


@dataclass(frozen=True)
class Value:
    """What a reference carries: one value of ``type``, or (``many``) a list of them."""

    type: ValueType
    many: bool = False

    def text(self) -> str:
        if self.type == "texts":
            return "a list of texts"
        return f"a list of {self.type}s" if self.many else f"{'an' if self.type == 'image' else 'a'} {self.type}"


def references(step: StepDef) -> Iterator[tuple[str, str]]:
    """``(field, reference)`` for every reference in ``step`` (text parts included), in field order."""
    if step.for_each is not None:
        yield "for_each", step.for_each
    for field in TEXT_FIELDS:
        value = getattr(step, field)
        for part in [value] if isinstance(value, str) else value or []:
            if is_reference(part):
                yield field, part
    for field in MEDIA_FIELDS:
        value = getattr(step, field)
        if value is not None:
            yield field, value
    for value in step.videos or []:
        yield "videos", value


def _step_refs(step: StepDef) -> Iterator[tuple[str, Ref]]:
    for field, text in references(step):
        ref = parse_ref(text) if is_reference(text) else None
        if ref is not None and ref.source == "step":
            yield field, ref


def step_dependencies(definition: PipelineDefinition) -> dict[str, set[str]]:
    """Step id -> the ids of the steps it takes outputs from (an approve step: its target)."""
    found: dict[str, set[str]] = {}
    for step in definition.steps:
        needs = {ref.name for _, ref in _step_refs(step) if ref.name}
        if step.kind == "approve" and step.target:
            needs.add(step.target)
        found[step.id] = needs
    return found


def find_cycle(definition: PipelineDefinition) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]`` (only among steps that exist), or None."""
    graph = step_dependencies(definition)
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node] & graph.keys()):
            if state.get(target) == "open":
                return [*stack[stack.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for step in definition.steps:
        if step.id not in state and (cycle := visit(step.id)):
            return cycle
    return None


def topological_order(definition: PipelineDefinition) -> list[str]:
    """Step ids so that every step comes after the steps it depends on (ties in the order written)."""
    graph = step_dependencies(definition)
    if cycle := find_cycle(definition):
        raise PipelineDefinitionError(cycle[0], "steps", "the steps form a cycle: " + " -> ".join(cycle))
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(graph):
        for step in definition.steps:
            if step.id not in done and graph[step.id] & graph.keys() <= done:
                order.append(step.id)
                done.add(step.id)
                break
    return order


def is_fan_out(definition: PipelineDefinition, step_id: str) -> bool:
    """True when the step makes a list per output: ``for_each``, ``variants``, extend's ``times``, or an approve
    step whose target fans out."""
    step = definition.step(step_id)
    if step.kind == "approve":
        return bool(step.target) and step.target in _ids(definition) and is_fan_out(definition, step.target)
    return step.for_each is not None or step.variants is not None or (step.kind == "extend"
                                                                       and step.times is not None)


def fan_out_size(definition: PipelineDefinition, step_id: str, inputs: Mapping[str, Any]) -> int | None:
    """How many items the step makes with these (resolved) inputs; None when it does not fan out."""
    step = definition.step(step_id)
    if not is_fan_out(definition, step_id):
        return None
    if step.kind == "approve":
        return fan_out_size(definition, step.target or "", inputs)
    if step.variants is not None:
        return step.variants
    if step.kind == "extend" and step.times is not None:
        return step.times
    ref = parse_ref(step.for_each or "")
    if ref is None:
        return None
    if ref.source == "input":
        items = inputs.get(ref.name or "")
        return len(items) if isinstance(items, list | tuple) else None
    if ref.source == "step" and ref.name in _ids(definition):
        return fan_out_size(definition, ref.name, inputs)
    return None


def outputs_of(definition: PipelineDefinition, step_id: str, _seen: frozenset[str] = frozenset()) -> dict[str,
                                                                                                         ValueType]:
    """The outputs a step makes (an approve step: its target's), by name."""
    step = definition.step(step_id)
    if step.kind == "approve":
        target = step.target or ""
        if target in _seen or target not in _ids(definition):
            return {}
        return outputs_of(definition, target, _seen | {step_id})
    if step.kind == "comfyui":
        made = comfyui_output(step.model)
        return {made: made} if made else dict(OUTPUTS["comfyui"])
    return dict(OUTPUTS[step.kind])


def comfyui_output(model_id: str | None) -> ValueType | None:
    """What a ComfyUI workflow model makes (an image or a video, as registered), or None when the model is
    unknown."""
    from reelflow.core.catalog import load_catalog

    entry = next((m for m in load_catalog().models if m.id == model_id and m.backend == "comfyui"), None)
    if entry is None:
        return None
    return "image" if entry.output_kind == "image" else "video"


def value_of(definition: PipelineDefinition, ref: Ref | str, step: str | None = None) -> Value:
    """What ``ref`` carries, seen from step ``step`` (needed for ``$item``/``$index``)."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    if parsed is None:
        raise ValueError(f"not a reference: {ref!r}")
    if parsed.source == "input":
        return Value(INPUT_TYPES[definition.inputs[parsed.name or ""].type])
    if parsed.source == "index":
        return Value("number")
    if parsed.source == "item":
        over = definition.step(step or "").for_each
        outer = value_of(definition, over or "", step)
        if outer.type == "texts":
            return Value("text")
        return Value(outer.type)
    made = outputs_of(definition, parsed.name or "")[parsed.output or ""]
    many = parsed.index is None and is_fan_out(definition, parsed.name or "")
    return Value("texts" if many and made == "text" else made, many=many and made != "text")


def value_type(definition: PipelineDefinition, ref: Ref | str, step: str | None = None) -> ValueType:
    """The type ``ref`` carries: a list of texts is ``texts``; for a list of images or videos this is the item
    type (``value_of(...).many`` says it is a list)."""
    return value_of(definition, ref, step).type


def is_list(value: Value) -> bool:
    return value.many or value.type == "texts"


def _ids(definition: PipelineDefinition) -> set[str]:
    return {s.id for s in definition.steps}
