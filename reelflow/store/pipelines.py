"""Saved pipelines: a named definition (a graph of steps) kept with every version of it, or — saved before
pipelines were graphs, or through the panel's spec form — a one-video spec, read as a one-step pipeline.

Every save that changes the definition bumps ``version`` and adds a ``pipeline_versions`` row, so a run can
name the exact definition it ran. A row from before (``definition`` NULL, no version rows) needs no rewrite:
``definition_of_spec`` reads it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reelflow.errors import PipelineNotFoundError, SpecError
from reelflow.store.db import session_scope
from reelflow.store.models import Pipeline, PipelineVersion

VIDEO_PARAMS = ("duration", "frames", "fps", "resolution", "seed")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9 _.-]+")


class PipelineView(BaseModel):
    pipeline_id: str
    name: str
    definition: dict[str, Any]
    version: int
    saved_as: Literal["definition", "spec"]
    spec: dict[str, Any]
    """The one-video spec it was saved as (empty for a pipeline saved as a definition)."""
    created_at: datetime
    updated_at: datetime


def definition_of_spec(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A one-video spec as the one-step pipeline it is: ``image_to_video`` on its model with its settings, after
    a ``generate_image`` step when it had ``image_prompt``; otherwise the image is the input ``image``."""
    params = {key: spec[key] for key in VIDEO_PARAMS if spec.get(key) is not None}
    video: dict[str, Any] = {"id": "video", "kind": "image_to_video", "model": spec.get("model")}
    steps: list[dict[str, Any]] = []
    inputs: dict[str, Any] = {}
    if spec.get("image_prompt") is not None:
        steps.append({"id": "image", "kind": "generate_image", "model": spec.get("image_model") or "flux-schnell",
                      "prompt": _literal(spec["image_prompt"])})
        video["image"] = "$image.image"
    else:
        inputs["image"] = {"type": "image", "description": "The start image: a path or an http(s) URL.",
                           **({"default": spec["image"]} if spec.get("image") else {"required": True})}
        video["image"] = "$inputs.image"
    if spec.get("prompt"):
        video["prompt"] = _literal(spec["prompt"])
    if spec.get("negative_prompt"):
        video["negative_prompt"] = _literal(spec["negative_prompt"])
    if params:
        video["params"] = params
    steps.append({key: value for key, value in video.items() if value is not None})
    return {"name": _definition_name(name), "inputs": inputs, "steps": steps}


def _literal(text: str) -> str:
    return "$" + text if text.startswith("$") else text


def _definition_name(name: str) -> str:
    cleaned = _NAME_CHARS.sub("-", name).strip(" -_.")[:100]
    return cleaned if cleaned else "pipeline"


def _view(row: Pipeline) -> PipelineView:
    legacy = row.definition is None
    definition = definition_of_spec(row.name, row.spec) if legacy else row.definition
    return PipelineView(pipeline_id=row.id, name=row.name, definition=definition or {}, version=row.version or 1,
                        saved_as="spec" if legacy else "definition", spec=row.spec if legacy else {},
                        created_at=row.created_at, updated_at=row.updated_at)


def _name_taken(name: str) -> SpecError:
    return SpecError("name", f"a pipeline named '{name}' already exists; choose another name")


def _add_version(s: Session, row: Pipeline) -> None:
    s.add(PipelineVersion(pipeline_id=row.id, version=row.version, definition=_view(row).definition))


def create_pipeline(name: str, *, definition: dict[str, Any] | None = None,
                    spec: dict[str, Any] | None = None) -> PipelineView:
    """Save a new pipeline (version 1): a checked ``definition``, or a one-video ``spec`` (the panel's form)."""
    if (definition is None) == (spec is None):
        raise SpecError("definition", "give a definition or a spec, not both and not neither")
    try:
        with session_scope() as s:
            row = Pipeline(id=uuid.uuid4().hex, name=name, spec=spec or {}, definition=definition, version=1)
            s.add(row)
            s.flush()
            _add_version(s, row)
            s.flush()
            return _view(row)
    except IntegrityError:
        raise _name_taken(name) from None


def get_pipeline(pipeline_id: str) -> PipelineView:
    with session_scope(readonly=True) as s:
        return _view(_row(s, pipeline_id))


def get_version(pipeline_id: str, version: int) -> dict[str, Any]:
    """The definition as it was at ``version`` (the current one when no older row was kept)."""
    with session_scope(readonly=True) as s:
        row = _row(s, pipeline_id)
        kept = s.scalar(select(PipelineVersion.definition).where(
            PipelineVersion.pipeline_id == pipeline_id, PipelineVersion.version == version))
        if kept is not None:
            return kept
        if version == row.version:
            return _view(row).definition
        raise SpecError("version", f"pipeline '{row.name}' has no version {version}; it is at version "
                        f"{row.version}")


def list_versions(pipeline_id: str) -> list[int]:
    with session_scope(readonly=True) as s:
        row = _row(s, pipeline_id)
        kept = s.scalars(select(PipelineVersion.version).where(PipelineVersion.pipeline_id == pipeline_id)
                         .order_by(PipelineVersion.version)).all()
        return sorted({*kept, row.version})


def _row(s: Session, pipeline_id: str) -> Pipeline:
    row = s.get(Pipeline, pipeline_id)
    if row is None:
        raise PipelineNotFoundError(pipeline_id)
    return row


def list_pipelines(*, limit: int = 100, offset: int = 0) -> tuple[list[PipelineView], int]:
    with session_scope(readonly=True) as s:
        total = s.scalar(select(func.count()).select_from(Pipeline)) or 0
        rows = s.scalars(select(Pipeline).order_by(Pipeline.name).limit(limit).offset(offset)).all()
        return [_view(r) for r in rows], total


def update_pipeline(pipeline_id: str, *, name: str | None = None, definition: dict[str, Any] | None = None,
                    spec: dict[str, Any] | None = None) -> PipelineView:
    """Rename and/or replace the definition (or the spec); a changed definition is a new version."""
    if definition is not None and spec is not None:
        raise SpecError("definition", "give a definition or a spec, not both")
    try:
        with session_scope() as s:
            row = _row(s, pipeline_id)
            before = _view(row).definition
            if name is not None:
                row.name = name
            if definition is not None:
                row.definition = definition
                row.spec = {}
            if spec is not None:
                row.definition = None
                row.spec = spec
            if _view(row).definition != before:
                if not s.scalar(select(func.count()).select_from(PipelineVersion).where(
                        PipelineVersion.pipeline_id == row.id)):
                    s.add(PipelineVersion(pipeline_id=row.id, version=row.version, definition=before))
                row.version = (row.version or 1) + 1
                _add_version(s, row)
            s.flush()
            return _view(row)
    except IntegrityError:
        raise _name_taken(name or "") from None


def delete_pipeline(pipeline_id: str) -> None:
    with session_scope() as s:
        s.delete(_row(s, pipeline_id))
