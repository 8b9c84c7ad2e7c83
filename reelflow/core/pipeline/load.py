"""Stand-in for C1a's loader (s20-pdef) until it lands: a YAML/JSON file, text or mapping to a definition."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reelflow.core.pipeline.definition import PipelineDefinition
from reelflow.errors import PipelineDefinitionError


def load_definition(source: str | os.PathLike[str] | Mapping[str, Any]) -> PipelineDefinition:
    if isinstance(source, PipelineDefinition):
        return source
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        text = str(source)
        path = Path(text)
        if isinstance(source, os.PathLike) or (len(text) < 4096 and "\n" not in text and path.suffix in
                                               (".yaml", ".yml", ".json")):
            if not path.is_file():
                raise PipelineDefinitionError(None, "file", f"no such file: {path}")
            text = path.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PipelineDefinitionError(None, "file", f"not YAML or JSON: {exc}") from None
    try:
        return PipelineDefinition.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PipelineDefinitionError(None, ".".join(str(p) for p in first["loc"]), first["msg"]) from None
