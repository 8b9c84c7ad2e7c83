"""``/api/pipelines``: saved pipeline specs (create, list, get, edit, delete; run one via POST /api/runs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from reelflow.core.spec import parse_spec
from reelflow.errors import SpecError
from reelflow.store import pipelines
from reelflow.web.auth import require_token
from reelflow.web.schemas import PipelineIn, PipelineOut, PipelinePage, PipelinePatch, SpecFields
from reelflow.web.services.images import resolve_image

router = APIRouter(prefix="/api/pipelines", tags=["pipelines"])
PipelineId = Path(min_length=1, max_length=64)
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such pipeline"},
          422: {"description": "Bad input; 'field' names it"}}
RUN_TIME_IMAGE = "https://example.com/image-given-at-run-time.png"


def checked_spec(fields: SpecFields) -> dict[str, Any]:
    """A saved spec must be a valid run spec once an image is given (unless it generates its own)."""
    spec = {key: value for key, value in fields.model_dump(exclude_unset=True).items() if value is not None}
    if "image" in spec:
        resolve_image(spec["image"])
    probe = spec if "image_prompt" in spec or "image" in spec else {**spec, "image": RUN_TIME_IMAGE}
    parse_spec(probe)
    return spec


def checked_name(name: str) -> str:
    if not name.strip():
        raise SpecError("name", "must not be empty")
    return name.strip()


def _out(view: pipelines.PipelineView) -> PipelineOut:
    return PipelineOut.model_validate(view.model_dump())


@router.post("", status_code=201, response_model=PipelineOut, dependencies=[Depends(require_token)],
             responses=ERRORS)
def create(body: PipelineIn) -> PipelineOut:
    return _out(pipelines.create_pipeline(checked_name(body.name), checked_spec(body.spec)))


@router.get("", response_model=PipelinePage)
def list_all(limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=2**62)) -> PipelinePage:
    found, total = pipelines.list_pipelines(limit=limit, offset=offset)
    return PipelinePage(total=total, pipelines=[_out(p) for p in found])


@router.get("/{pipeline_id}", response_model=PipelineOut, responses={404: ERRORS[404]})
def get(pipeline_id: str = PipelineId) -> PipelineOut:
    return _out(pipelines.get_pipeline(pipeline_id))


@router.put("/{pipeline_id}", response_model=PipelineOut, dependencies=[Depends(require_token)], responses=ERRORS)
def update(body: PipelinePatch, pipeline_id: str = PipelineId) -> PipelineOut:
    """Rename a pipeline and/or replace its spec."""
    spec = checked_spec(body.spec) if body.spec is not None else None
    name = checked_name(body.name) if body.name is not None else None
    return _out(pipelines.update_pipeline(pipeline_id, name=name, spec=spec))


@router.delete("/{pipeline_id}", status_code=204, response_class=Response, dependencies=[Depends(require_token)],
               responses=ERRORS)
def delete(pipeline_id: str = PipelineId) -> Response:
    pipelines.delete_pipeline(pipeline_id)
    return Response(status_code=204)
