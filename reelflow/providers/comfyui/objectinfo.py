"""Reading combo option lists out of ``/object_info/{class}`` answers (V1 and V3 forms)."""

from __future__ import annotations

from typing import Any


def input_spec(info: dict[str, Any], class_type: str, input_name: str) -> Any:
    """The spec of one input from an ``/object_info/{class}`` answer, or None."""
    inputs = (info.get(class_type) or {}).get("input") or {}
    for section in ("required", "optional"):
        spec = (inputs.get(section) or {}).get(input_name)
        if spec is not None:
            return spec
    return None


def combo_options(spec: Any) -> list[str] | None:
    """V1 ``[[options], {...}]`` or V3 ``["COMBO", {"options": [...]}]`` -> options; None if not a combo."""
    if not isinstance(spec, list) or not spec:
        return None
    if isinstance(spec[0], list):
        return [str(option) for option in spec[0]]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        options = spec[1].get("options")
        return [str(option) for option in options] if isinstance(options, list) else None
    return None
