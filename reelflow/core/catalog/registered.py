"""fal endpoints registered as models with ``reelflow models add``, kept as JSON under REELFLOW_HOME/models.

Each file holds a whole catalog entry (the same data a built-in fal entry has: inputs, price, fal field
names), checked like a built-in one when registered and when read.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from reelflow.core.catalog.models import FalFields, ModelEntry, ModelInputs, Price, builtin_catalog
from reelflow.core.files import write_text_atomic
from reelflow.errors import SpecError
from reelflow.settings import get_settings

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*){1,5}$")
FAL_KINDS = ("i2v", "t2v", "t2i", "i2i")
_cache: dict[str, Any] = {"key": None, "models": []}


class RegisteredModel(BaseModel):
    """What ``reelflow models add`` stores."""

    model_config = ConfigDict(frozen=True)

    entry: ModelEntry
    registered_at: str


def models_dir() -> Path:
    return get_settings().home / "models"


def check_id(model_id: str) -> str:
    if not _ID.match(model_id):
        raise SpecError("id", f"'{model_id}' must be 1-64 lower-case letters, digits, '.', '_' or '-', starting "
                        "with a letter or digit")
    if any(m.id == model_id for m in builtin_catalog().models):
        raise SpecError("id", f"'{model_id}' is a built-in model; choose another id")
    return model_id


def _path(model_id: str) -> Path:
    return models_dir() / f"{check_id(model_id)}.json"


def fal_entry(model_id: str, *, endpoint: str, kind: str, fields: FalFields, inputs: ModelInputs, price: Price,
              name: str | None = None, description: str = "", source: str | None = None) -> ModelEntry:
    """A catalog entry for a fal endpoint, checked as a built-in one is."""
    check_id(model_id)
    if kind not in FAL_KINDS:
        raise SpecError("kind", f"'{kind}' is not a kind a fal endpoint can be registered as; choose one of: "
                        + ", ".join(FAL_KINDS))
    endpoint = endpoint.strip().strip("/")
    if not _ENDPOINT.match(endpoint):
        raise SpecError("fal_endpoint", f"'{endpoint}' is not a fal endpoint id; give OWNER/APP[/PATH], "
                        "e.g. fal-ai/veo3.1/image-to-video")
    if "{}" not in fields.duration_format:
        raise SpecError("duration_format", f"'{fields.duration_format}' must contain {{}} where the seconds go, "
                        "e.g. '{}' or '{}s'")
    if kind in ("i2v", "i2i") and fields.image_field is None:
        raise SpecError("image_field", f"a {kind} model needs the endpoint's image field, e.g. image_url")
    if inputs.durations is not None and not all(d > 0 for d in inputs.durations):
        raise SpecError("durations", "every duration must be a positive number of seconds")
    try:
        return ModelEntry(id=model_id, name=name or f"{model_id} (your fal endpoint {endpoint})", kind=kind,
                          backend="fal", endpoint=endpoint, ai=True,
                          description=description or f"fal endpoint {endpoint}, registered with reelflow models add.",
                          speed_hint="depends on the endpoint", inputs=inputs, price=price, fal=fields,
                          source=source)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(".".join(str(p) for p in first["loc"]) or "model", first["msg"]) from None


def register(entry: ModelEntry, *, replace: bool = False) -> RegisteredModel:
    path = _path(entry.id)
    if path.exists() and not replace:
        raise SpecError("id", f"a model '{entry.id}' is registered already; remove it first or use --replace")
    stored = RegisteredModel(entry=entry, registered_at=datetime.now(UTC).isoformat())
    write_text_atomic(path, stored.model_dump_json(indent=1))
    return stored


def remove(model_id: str) -> bool:
    path = _path(model_id)
    if not path.exists():
        return False
    path.unlink()
    return True


def _read(path: Path) -> RegisteredModel | None:
    try:
        return RegisteredModel.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def registered() -> list[RegisteredModel]:
    """Every readable registered fal model, by id (re-read only when the folder changes)."""
    folder = models_dir()
    try:
        files = sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.name.endswith(".json"))
    except FileNotFoundError:
        files = []
    key = (str(folder), tuple(files))
    if _cache["key"] != key:
        found = [_read(folder / file_name) for file_name, _ in files]
        _cache.update(key=key, models=[m for m in found if m is not None])
    return list(_cache["models"])


def registered_fal_models() -> list[ModelEntry]:
    return [m.entry for m in registered()]
