"""Batch items: images × prompts from a folder, a CSV/JSONL file or a list, each one pipeline spec; or, with a
pipeline definition, one run of it per CSV/JSONL row (the row's columns are its inputs).

The batch id is a hash of the items' specs, so running the same batch again gets the same id; finished
items are then reused through the idempotency cache and only the rest is rendered. An item without a seed
gets one derived from its spec (not a random one, as a single run would), so that re-run finds it again.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reelflow.core.catalog import load_catalog
from reelflow.core.listeners import Listeners
from reelflow.core.money import Usd
from reelflow.core.pipeline.definition import PipelineDefinition
from reelflow.core.spec import MAX_SEED, PipelineSpec
from reelflow.errors import SpecError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
PROMPTS_FILE = "prompts.txt"
Source = str | list[str | dict[str, Any]]


class BatchItem(BaseModel):
    label: str
    spec: dict[str, Any]


class ItemResult(BaseModel):
    """One row of a batch summary."""

    item: str
    status: str
    run_id: str | None = None
    cached: bool = False
    cost_usd: Usd | None = None
    error: str | None = None
    video: str | None = None
    prefect_url: str | None = None


def build_items(source: Source, *, prompts: list[str] | None = None, defaults: dict[str, Any] | None = None,
                allow_empty: bool = False) -> list[BatchItem]:
    """Expand ``source`` into items; ``defaults`` (e.g. model, duration) fill what an item leaves out.

    A folder gives each image × each prompt (``prompts``, else the lines of its ``prompts.txt``, else the
    default prompt); a ``.csv`` (header row of spec fields) or ``.jsonl`` file gives one item per row, image
    paths relative to the file; a list gives image paths/URLs (× prompts) or partial specs (dicts).
    """
    defaults = dict(defaults or {})
    if isinstance(source, list):
        specs = _from_list(source, prompts, defaults)
    else:
        path = Path(source).expanduser()
        if path.is_dir() or (allow_empty and not path.exists()):
            specs = _from_folder(path, prompts, defaults)
        elif path.suffix.lower() == ".csv" and path.is_file():
            specs = [_merge(defaults, _coerce(row), path.parent) for row in _csv_rows(path)]
        elif path.suffix.lower() == ".jsonl" and path.is_file():
            specs = [_merge(defaults, row, path.parent) for row in _jsonl_rows(path)]
        else:
            raise SpecError("source", f"'{source}' is not a folder, a .csv file or a .jsonl file")
    if not specs and not allow_empty:
        raise SpecError("source", f"no items found in {source!r}")
    return [BatchItem(label=_label(index, spec), spec=_seeded(spec)) for index, spec in enumerate(specs)]


def build_pipeline_items(source: str, definition: PipelineDefinition, *,
                         defaults: dict[str, Any] | None = None) -> list[BatchItem]:
    """One item per row of a ``.csv`` (header row of input names) or ``.jsonl`` file: the row's values are the
    pipeline's inputs (``defaults`` fill what a row leaves out; empty cells count as not given), an image input's
    relative path is relative to the file. The inputs themselves are checked when each run is recorded."""
    path = Path(source).expanduser()
    if path.suffix.lower() == ".csv" and path.is_file():
        rows = _csv_rows(path)
    elif path.suffix.lower() == ".jsonl" and path.is_file():
        rows = _jsonl_rows(path)
    else:
        raise SpecError("source", f"'{source}' is not a .csv or .jsonl file (a pipeline batch takes one row per run)")
    images = {name for name, spec in definition.inputs.items() if spec.type == "image"}
    items = []
    for index, row in enumerate(rows):
        inputs = {**(defaults or {}), **{k: v for k, v in row.items() if v is not None and v != ""}}
        for name in images & set(inputs):
            value = inputs[name]
            if isinstance(value, str) and not value.startswith(("http://", "https://")):
                inputs[name] = str((path.parent / Path(value).expanduser()).resolve())
        shown = next((str(v) for v in inputs.values() if isinstance(v, str)), "")
        items.append(BatchItem(label=f"{index + 1}: {definition.name}" + (f" · {shown[:40]}" if shown else ""),
                               spec=inputs))
    if not items:
        raise SpecError("source", f"no rows found in {source!r}")
    return items


def pipeline_batch_id(definition: PipelineDefinition, items: list[BatchItem]) -> str:
    canonical = json.dumps({"definition": definition.model_dump(mode="json", exclude_none=True),
                            "rows": [item.spec for item in items]}, sort_keys=True, separators=(",", ":"))
    return "batch-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _seeded(spec: dict[str, Any]) -> dict[str, Any]:
    """The item with a seed derived from its spec when it has none and its model takes one."""
    model = next((m for m in load_catalog().models if m.id == spec.get("model") and m.kind in ("i2v", "t2v")), None)
    if spec.get("seed") is not None or model is None or not model.inputs.seed:
        return spec
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return {**spec, "seed": int(hashlib.sha256(canonical.encode()).hexdigest(), 16) % (MAX_SEED + 1)}


def batch_id_for(items: list[BatchItem]) -> str:
    canonical = json.dumps([item.spec for item in items], sort_keys=True, separators=(",", ":"))
    return "batch-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _from_folder(folder: Path, prompts: list[str] | None, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if prompts is None and (folder / PROMPTS_FILE).is_file():
        prompts = [line.strip() for line in (folder / PROMPTS_FILE).read_text().splitlines() if line.strip()]
    return [{**defaults, "image": str(image.resolve()), "prompt": prompt}
            for image in images for prompt in _prompts(prompts, defaults)]


def _from_list(entries: list[str | dict[str, Any]], prompts: list[str] | None,
               defaults: dict[str, Any]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for entry in entries:
        if isinstance(entry, dict):
            specs.append(_merge(defaults, entry, Path.cwd()))
        else:
            specs.extend(_merge(defaults, {"image": entry, "prompt": prompt}, Path.cwd())
                         for prompt in _prompts(prompts, defaults))
    return specs


def _prompts(prompts: list[str] | None, defaults: dict[str, Any]) -> list[str]:
    return prompts if prompts else [defaults.get("prompt", "")]


def _merge(defaults: dict[str, Any], row: dict[str, Any], base: Path) -> dict[str, Any]:
    spec = {**defaults, **{k: v for k, v in row.items() if v is not None and v != ""}}
    image = spec.get("image")
    if isinstance(image, str) and not image.startswith(("http://", "https://")):
        spec["image"] = str((base / Path(image).expanduser()).resolve())
    return spec


def _csv_rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [{k.strip(): v.strip() for k, v in row.items() if k} for row in csv.DictReader(handle)]


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError("source", f"{path.name} line {number} is not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise SpecError("source", f"{path.name} line {number} is not a JSON object")
        rows.append(row)
    return rows


def _coerce(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells are text; turn numbers into the types the (strict) spec wants."""
    fields = PipelineSpec.model_fields
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in fields and value != "":
            try:
                out[name] = TypeAdapter(fields[name].annotation).validate_python(value, strict=False)
            except ValidationError:
                out[name] = value
        else:
            out[name] = value
    return out


def _label(index: int, spec: dict[str, Any]) -> str:
    image = spec.get("image")
    subject = Path(image).name if isinstance(image, str) else str(spec.get("image_prompt") or "")[:30]
    prompt = str(spec.get("prompt") or "")
    return f"{index + 1}: {subject}" + (f" · {prompt[:40]}" if prompt else "")


_listeners: Listeners[[str, ItemResult, int, int]] = Listeners()
subscribe = _listeners.subscribe  # listener(batch_id, result, finished, total) whenever an item here ends
notify = _listeners.notify
