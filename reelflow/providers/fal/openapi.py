"""fal's published OpenAPI schema of an endpoint: its input fields and choices, and a catalog entry checked
against them (the schema-drift check) or filled from them (``reelflow models add --from-openapi``).

fal serves the schema at ``openapi_url(endpoint)`` (the queue API's schema; ``endpoint_id`` is the full
endpoint path, URL-encoded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from reelflow.core.catalog import ModelEntry
from reelflow.errors import SpecError
from reelflow.providers.fal.arguments import sent_fields

OPENAPI_URL = "https://fal.ai/api/openapi/queue/openapi.json?endpoint_id={endpoint}"
IMAGE_FIELDS = ("image_url", "start_image_url", "first_frame_url", "image_urls")
END_IMAGE_FIELDS = ("end_image_url", "tail_image_url", "last_frame_url")
AUDIO_FIELDS = ("generate_audio",)


def openapi_url(endpoint: str) -> str:
    return OPENAPI_URL.format(endpoint=quote(endpoint.strip("/"), safe=""))


@dataclass(frozen=True)
class Field:
    name: str
    required: bool
    choices: list[Any] | None
    type: str | None


def _resolve(doc: dict[str, Any], node: Any) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise SpecError("openapi", f"cannot follow the reference {ref!r}")
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            raise SpecError("openapi", f"the reference {ref} points at nothing")
        node = target
    return node if isinstance(node, dict) else {}


def _choices(doc: dict[str, Any], node: dict[str, Any]) -> tuple[list[Any] | None, str | None]:
    node = _resolve(doc, node)
    if "enum" in node:
        return list(node["enum"]), node.get("type")
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            found = [_choices(doc, _resolve(doc, part)) for part in node[key]]
            enums = [choice for choices, _ in found if choices for choice in choices]
            if key == "allOf" or all(choices is not None for choices, _ in found):
                return (enums or None), next((kind for _, kind in found if kind), None)
            return None, next((kind for _, kind in found if kind), None)
    return None, node.get("type")


def input_fields(doc: dict[str, Any], endpoint: str | None = None) -> dict[str, Field]:
    """The input fields of the endpoint's POST (the one at ``/<endpoint>`` when several are described)."""
    posts = [(path, item["post"]) for path, item in (doc.get("paths") or {}).items()
             if isinstance(item, dict) and isinstance(item.get("post"), dict) and item["post"].get("requestBody")]
    if endpoint is not None:
        posts = [p for p in posts if p[0].strip("/") == endpoint.strip("/")] or posts
    if not posts:
        raise SpecError("openapi", "the schema describes no POST with a request body (is it fal's OpenAPI schema?)")
    body = posts[0][1]["requestBody"]
    schema = _resolve(doc, ((body.get("content") or {}).get("application/json") or {}).get("schema"))
    required = set(schema.get("required") or [])
    fields = {}
    for name, node in (schema.get("properties") or {}).items():
        choices, kind = _choices(doc, node)
        fields[name] = Field(name=name, required=name in required, choices=choices, type=kind)
    if not fields:
        raise SpecError("openapi", "the request body has no properties")
    return fields


def load_openapi(source: str) -> dict[str, Any]:
    """The schema from a file, or from an http(s) URL (fal's ``OPENAPI_URL``)."""
    try:
        if source.startswith(("https://", "http://")):
            import httpx

            response = httpx.get(source, timeout=30.0, follow_redirects=True)
            response.raise_for_status()
            data = response.json()
        else:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError("from_openapi", f"cannot read an OpenAPI schema from {source}: {exc}") from None
    except Exception as exc:  # httpx's errors: the URL did not answer with a schema
        raise SpecError("from_openapi", f"cannot fetch {source}: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError("from_openapi", f"{source} is not a JSON object")
    return data


def drift(model: ModelEntry, doc: dict[str, Any]) -> list[str]:
    """What ``model`` would send that the endpoint's schema does not take (field names, choices), and the
    schema's required fields it never sends; empty when they agree."""
    fields = input_fields(doc, model.endpoint)
    sent = sent_fields(model)
    problems = []
    for name, values in sent.items():
        field = fields.get(name)
        if field is None:
            problems.append(f"{model.id}: sends '{name}', which {model.endpoint} does not take "
                            f"(it takes: {', '.join(sorted(fields))})")
        elif values is not None and field.choices is not None:
            wrong = [v for v in values if v not in field.choices]
            if wrong:
                problems.append(f"{model.id}: sends {name}={wrong}, not among {field.choices}")
    for name, field in fields.items():
        if field.required and name not in sent:
            problems.append(f"{model.id}: never sends '{name}', which {model.endpoint} requires")
    return problems


def suggested(doc: dict[str, Any], endpoint: str, kind: str) -> dict[str, Any]:
    """Catalog data read from the schema: field names, durations and their format, resolutions, switches."""
    fields = input_fields(doc, endpoint)
    found: dict[str, Any] = {"image_field": next((n for n in IMAGE_FIELDS if n in fields), None),
                             "end_image_field": next((n for n in END_IMAGE_FIELDS if n in fields), None),
                             "audio_field": next((n for n in AUDIO_FIELDS if n in fields), None),
                             "seed": "seed" in fields, "negative_prompt": "negative_prompt" in fields}
    if kind == "t2v":
        found["image_field"] = None
    duration = fields.get("duration")
    if duration is not None and duration.choices:
        texts = [str(c) for c in duration.choices]
        suffix = "s" if all(t.endswith("s") for t in texts) else ""
        try:
            found["durations"] = [float(t.removesuffix(suffix)) for t in texts]
            found["duration_format"] = "{}" + suffix
        except ValueError:
            pass
    resolution = fields.get("resolution")
    if resolution is not None and resolution.choices:
        found["resolutions"] = [str(c) for c in resolution.choices]
    if "image_size" in fields:
        found["image_size_field"] = "image_size"
    return found
