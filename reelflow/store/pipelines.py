"""Saved pipelines: a named, reusable spec (optional image step, video model and its settings)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from reelflow.errors import PipelineNotFoundError, SpecError
from reelflow.store.db import session_scope
from reelflow.store.models import Pipeline


class PipelineView(BaseModel):
    pipeline_id: str
    name: str
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _view(row: Pipeline) -> PipelineView:
    return PipelineView(pipeline_id=row.id, name=row.name, spec=row.spec, created_at=row.created_at,
                        updated_at=row.updated_at)


def _name_taken(name: str) -> SpecError:
    return SpecError("name", f"a pipeline named '{name}' already exists; choose another name")


def create_pipeline(name: str, spec: dict[str, Any]) -> PipelineView:
    try:
        with session_scope() as s:
            row = Pipeline(id=uuid.uuid4().hex, name=name, spec=spec)
            s.add(row)
            s.flush()
            return _view(row)
    except IntegrityError:
        raise _name_taken(name) from None


def get_pipeline(pipeline_id: str) -> PipelineView:
    with session_scope() as s:
        row = s.get(Pipeline, pipeline_id)
        if row is None:
            raise PipelineNotFoundError(pipeline_id)
        return _view(row)


def list_pipelines(*, limit: int = 100, offset: int = 0) -> tuple[list[PipelineView], int]:
    with session_scope() as s:
        total = s.scalar(select(func.count()).select_from(Pipeline)) or 0
        rows = s.scalars(select(Pipeline).order_by(Pipeline.name).limit(limit).offset(offset)).all()
        return [_view(r) for r in rows], total


def update_pipeline(pipeline_id: str, *, name: str | None = None, spec: dict[str, Any] | None = None) -> PipelineView:
    try:
        with session_scope() as s:
            row = s.get(Pipeline, pipeline_id)
            if row is None:
                raise PipelineNotFoundError(pipeline_id)
            if name is not None:
                row.name = name
            if spec is not None:
                row.spec = spec
            s.flush()
            return _view(row)
    except IntegrityError:
        raise _name_taken(name or "") from None


def delete_pipeline(pipeline_id: str) -> None:
    with session_scope() as s:
        row = s.get(Pipeline, pipeline_id)
        if row is None:
            raise PipelineNotFoundError(pipeline_id)
        s.delete(row)
