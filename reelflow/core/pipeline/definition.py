"""A pipeline definition: typed ``inputs`` and a graph of ``steps``, written as YAML or JSON or built in Python.

Values that come from elsewhere are explicit references, never code or templates:

* ``$inputs.<name>``: a pipeline input;
* ``$<step>.<output>``: an earlier step's output (a list when that step fans out), ``$<step>[<i>].<output>`` one item
  of it (0-based);
* ``$item`` / ``$index``: inside a step with ``for_each``, the current item and its position;
* ``$$...``: a literal text that starts with ``$``.

A text field may also be a list of parts, joined without separators: ``prompt: ["$inputs.style", ", ", "$item"]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

InputType = Literal["text", "texts", "image", "number", "choice"]
StepKind = Literal["generate_image", "edit_image", "enhance_prompt", "image_to_video", "extend", "concat", "comfyui",
                   "approve"]
ValueType = Literal["text", "texts", "image", "video", "number"]

STEP_ID = r"^[a-z][a-z0-9_]{0,39}$"
INPUT_NAME = r"^[a-z][a-z0-9_]{0,39}$"
MAX_FAN_OUT = 32

OUTPUTS: dict[str, dict[str, ValueType]] = {
    "generate_image": {"image": "image"},
    "edit_image": {"image": "image"},
    "enhance_prompt": {"text": "text"},
    "image_to_video": {"video": "video"},
    "extend": {"video": "video"},
    "concat": {"video": "video"},
    "comfyui": {"image": "image", "video": "video"},  # the one its workflow makes
    "approve": {},  # the judged step's outputs, passed on once approved
}
"""What each kind of step makes, by output name."""

TextValue = str | list[str]


class InputDef(BaseModel):
    """One input of the pipeline, given as ``--input name=value`` (CLI), ``inputs`` (API) or a batch row's column."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: InputType = Field(description="text, texts (a list of texts), image (a path or URL), number or choice.")
    description: str | None = None
    default: Any = Field(default=None, description="Used when the input is not given.")
    required: bool | None = Field(default=None, description="Needed when there is no default; defaults to that.")
    choices: list[str] | None = Field(default=None, description="The allowed values of a choice input.")
    min: float | None = Field(default=None, description="The smallest allowed value of a number input.")
    max: float | None = Field(default=None, description="The largest allowed value of a number input.")


class StepDef(BaseModel):
    """One step: its id (also its Prefect task run's name), its kind, its model, and where its inputs come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=STEP_ID, description="Lowercase letters, digits and _, starting with a letter.")
    kind: StepKind
    model: str | None = Field(default=None, description=(
        "Catalog model id (`reelflow models`); for comfyui the registered workflow's id. Not used by concat and "
        "approve."))
    for_each: str | None = Field(default=None, description=(
        "Fan out over a list (a texts input, or a fan-out step's output): one item each, as $item and $index."))
    variants: int | None = Field(default=None, ge=1, le=MAX_FAN_OUT, description=(
        "Fan out into N variants of the same inputs, each with its own seed."))
    prompt: TextValue | None = Field(default=None, description="What to make (or, for edit_image, the instruction).")
    negative_prompt: TextValue | None = None
    image: str | None = Field(default=None, description="The input image: a reference.")
    end_image: str | None = Field(default=None, description="The last frame, for models that take one.")
    video: str | None = Field(default=None, description="The input video (extend, comfyui): a reference.")
    videos: list[str] | None = Field(default=None, description=(
        "concat: the clips in order; a fan-out's output counts as its items in order."))
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "The model's settings, checked against the catalog as `reelflow run` checks them: duration, frames, fps, "
        "resolution, seed; concat: crossfade (seconds), fps, resolution."))
    times: int | None = Field(default=None, ge=1, le=MAX_FAN_OUT, description=(
        "extend: how many clips to add, each starting from the last frame of the one before."))
    target: str | None = Field(default=None, description="approve: the step whose output a person judges.")
    timeout: float | None = Field(default=None, gt=0, description="approve: seconds to wait for an answer.")
    on_timeout: Literal["cancel", "approve"] = Field(default="cancel", description=(
        "approve: what an unanswered approval does when its timeout passes."))


class PipelineDefinition(BaseModel):
    """A named pipeline: its inputs, its steps, and (optionally) which step outputs are its final outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$")
    description: str | None = None
    inputs: dict[str, InputDef] = Field(default_factory=dict)
    steps: list[StepDef] = Field(min_length=1)
    outputs: dict[str, str] | None = Field(default=None, description=(
        "Final outputs by name, each a reference; left out, every output no other step takes."))

    def step(self, step_id: str) -> StepDef:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


_REF = re.compile(
    r"^\$(?:inputs\.(?P<input>[a-z][a-z0-9_]*)"
    r"|(?P<loop>item|index)"
    r"|(?P<step>[a-z][a-z0-9_]*)(?:\[(?P<index>\d{1,3})\])?\.(?P<output>[a-z][a-z0-9_]*))$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: to a pipeline input, to the current fan-out item, or to a step's output."""

    source: Literal["input", "item", "index", "step"]
    name: str | None = None  # the input's or the step's name
    output: str | None = None
    index: int | None = None  # one item of a fan-out step's output

    def __str__(self) -> str:
        if self.source == "input":
            return f"$inputs.{self.name}"
        if self.source in ("item", "index"):
            return f"${self.source}"
        return f"${self.name}{'' if self.index is None else f'[{self.index}]'}.{self.output}"


def is_reference(value: object) -> bool:
    """True for a text that is meant as a reference (starts with one ``$``); ``$$`` starts a literal."""
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


def parse_ref(value: str) -> Ref | None:
    """The reference ``value`` names, or None when it is not well formed (the checker says what is allowed)."""
    found = _REF.match(value)
    if found is None:
        return None
    if found["input"]:
        return Ref("input", name=found["input"])
    if found["loop"]:
        return Ref("item" if found["loop"] == "item" else "index")
    index = found["index"]
    return Ref("step", name=found["step"], output=found["output"], index=None if index is None else int(index))


def literal_text(value: str) -> str:
    """The text a literal stands for (``$$5`` is ``$5``)."""
    return value[1:] if value.startswith("$$") else value
