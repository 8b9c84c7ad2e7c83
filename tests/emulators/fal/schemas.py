"""Request bodies checked against the stored OpenAPI input schemas (tests/fixtures/fal_schemas/), as fal does.

fal answers a body that misses a required field or sends a value outside an enum with 422. It ignores
unknown fields; the emulator rejects them too, so a renamed field shows up in tests, not as a silently
ignored input on a paid run.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from reelflow.providers.fal.openapi import Field, input_fields

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fal_schemas"
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "number": (int, float), "integer": (int,),
                                       "boolean": (bool,), "array": (list,), "object": (dict,)}


@cache
def schema_for(endpoint: str) -> dict[str, Field] | None:
    path = FIXTURES / f"{endpoint.strip('/')}.json"
    if not path.is_file():
        return None
    return input_fields(json.loads(path.read_text(encoding="utf-8")), endpoint)


def output_kind(endpoint: str) -> str | None:
    """'images' or 'video': what the endpoint's stored schema says it returns."""
    path = FIXTURES / f"{endpoint.strip('/')}.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    props = doc.get("components", {}).get("schemas", {}).get("Output", {}).get("properties", {})
    return "images" if "images" in props else "video" if "video" in props else None


def _detail(loc: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", loc], "msg": msg, "type": kind}


def check_body(fields: dict[str, Field], body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = [_detail(name, "field required", "missing") for name, field in fields.items()
              if field.required and body.get(name) in (None, "", [])]
    for name, value in body.items():
        field = fields.get(name)
        if field is None:
            errors.append(_detail(name, "extra inputs are not permitted", "extra_forbidden"))
        elif field.choices is not None and value not in field.choices:
            choices = ", ".join(repr(c) for c in field.choices)
            errors.append(_detail(name, f"Input should be {choices}", "literal_error"))
        elif field.type in _TYPES and not (isinstance(value, _TYPES[field.type])
                                           and not (field.type != "boolean" and isinstance(value, bool))):
            errors.append(_detail(name, f"Input should be a valid {field.type}", f"{field.type}_type"))
    return errors
