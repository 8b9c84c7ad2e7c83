"""Reading a pipeline definition from a file, from YAML/JSON text or from a mapping, with errors naming the
step and field (never a raw YAML or pydantic traceback)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from reelflow.core.pipeline.definition import PipelineDefinition, StepKind
from reelflow.errors import PipelineDefinitionError

SUFFIXES = (".yaml", ".yml", ".json")
MAX_BYTES = 1_000_000


def load_definition(source: str | os.PathLike[str] | Mapping[str, Any]) -> PipelineDefinition:
    """A definition from a ``.yaml``/``.yml``/``.json`` path, YAML or JSON text, or a mapping (structure only;
    ``check_definition`` checks kinds, models, references and params)."""
    if isinstance(source, PipelineDefinition):
        return source
    data = source if isinstance(source, Mapping) else parse_text(_read(source))
    return from_mapping(data)


def _read(source: str | os.PathLike[str]) -> str:
    text = os.fspath(source)
    looks_like_path = isinstance(source, os.PathLike) or ("\n" not in text and text.lower().endswith(SUFFIXES))
    if not looks_like_path:
        return text
    path = Path(text).expanduser()
    try:
        if path.stat().st_size > MAX_BYTES:
            raise PipelineDefinitionError(None, "file", f"'{path}' is larger than {MAX_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineDefinitionError(None, "file", f"'{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineDefinitionError(None, "file", f"'{path}' cannot be read as UTF-8 text ({exc})") from None


def parse_text(text: str) -> Mapping[str, Any]:
    """YAML or JSON text (JSON is YAML) to a mapping."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PipelineDefinitionError(None, "definition", f"is larger than {MAX_BYTES} bytes")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PipelineDefinitionError(None, "definition", f"is not valid YAML or JSON{where}: {problem}") from None
    if not isinstance(data, Mapping):
        raise PipelineDefinitionError(None, "definition", "must be a mapping with name, inputs and steps; got "
                                      + ("nothing" if data is None else type(data).__name__))
    return data


def from_mapping(data: Mapping[str, Any]) -> PipelineDefinition:
    try:
        definition = PipelineDefinition.model_validate(dict(data))
    except ValidationError as exc:
        raise _error(exc, data) from None
    seen: set[str] = set()
    for step in definition.steps:
        if step.id in seen:
            raise PipelineDefinitionError(step.id, "id", f"'{step.id}' is used by more than one step; step ids "
                                          "must be unique")
        seen.add(step.id)
    return definition


def _error(exc: ValidationError, data: Mapping[str, Any]) -> PipelineDefinitionError:
    first = exc.errors()[0]
    loc = list(first["loc"])
    message = _message(first)
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        step = _step_name(data, loc[1])
        field = ".".join(str(p) for p in loc[2:]) or "step"
        if field == "kind" and first["type"] == "literal_error":
            message = f"{_shown(first.get('input'))} is not a step kind; allowed: " + ", ".join(get_args(StepKind))
        return PipelineDefinitionError(step, field, message)
    return PipelineDefinitionError(None, ".".join(str(p) for p in loc) or "definition", message)


def _step_name(data: Mapping[str, Any], index: int) -> str:
    steps = data.get("steps")
    raw = steps[index] if isinstance(steps, list) and index < len(steps) else None
    name = raw.get("id") if isinstance(raw, Mapping) else None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "string_pattern_mismatch":
        return f"{_shown(error.get('input'))} is not allowed; " + {
            r"^[a-z][a-z0-9_]{0,39}$": "allowed: lowercase letters, digits and _, starting with a letter, at most 40",
        }.get(error["ctx"]["pattern"], f"it must match {error['ctx']['pattern']}")
    return f"{error['msg'].removeprefix('Value error, ')} (got {_shown(error.get('input'))})"


def _shown(value: object) -> str:
    text = f"'{value}'" if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
