"""``/api/pipelines``: saved pipeline definitions with versions (create, list, get, edit, delete) and
``POST /api/pipelines/estimate``. A body may be JSON (``definition`` as an object or as YAML text; or the
panel's one-video ``spec``) or the YAML definition itself (``Content-Type: application/yaml``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.convertors import StringConvertor, register_url_convertor

from reelflow.core.pipeline.check import check_definition
from reelflow.core.pipeline.definition import PipelineDefinition
from reelflow.core.pipeline.estimate import estimate as price
from reelflow.core.pipeline.load import from_mapping, parse_text
from reelflow.core.spec import parse_spec
from reelflow.errors import SpecError
from reelflow.store import pipelines
from reelflow.web.auth import require_token
from reelflow.web.errors import validation_message
from reelflow.web.schemas import (
    EstimateIn,
    EstimateOut,
    PipelineIn,
    PipelineOut,
    PipelinePage,
    PipelinePatch,
    SpecFields,
)
from reelflow.web.services import pipeline_builder
from reelflow.web.services.images import resolve_image

router = APIRouter(prefix="/api/pipelines", tags=["pipelines"])


class _PipelineIdConvertor(StringConvertor):
    """A path segment naming a stored pipeline: anything but ``estimate``, ``check`` and ``palette``, so
    ``/api/pipelines/estimate`` is that one POST route only (its 405 answers ``Allow: POST``, not the methods of
    ``/api/pipelines/{pipeline_id}``)."""

    regex = "(?!(?:estimate|check|palette)$)[^/]+"


register_url_convertor("pipeline_id", _PipelineIdConvertor())
ONE = "/{pipeline_id:pipeline_id}"
PipelineId = Path(min_length=1, max_length=64)
ERRORS = {401: {"description": "Missing or wrong bearer token"}, 404: {"description": "No such pipeline"},
          422: {"description": "Bad input; 'field' names it, and for a definition 'detail[0].loc' is "
                "['steps', <step id>, <field>]"}}
RUN_TIME_IMAGE = "https://example.com/image-given-at-run-time.png"
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
MAX_BODY = 1_000_000


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The request body as OpenAPI documents it (the route reads the body itself, to take YAML too)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        return [inline(item) for item in node] if isinstance(node, list) else node

    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": inline(schema)},
        "application/yaml": {"schema": {"type": "string", "description": "The definition as YAML."}}}}}


def checked_spec(fields: SpecFields) -> dict[str, Any]:
    """A saved spec must be a valid run spec once an image is given (unless it generates its own)."""
    spec = {key: value for key, value in fields.model_dump(exclude_unset=True).items() if value is not None}
    if "image" in spec:
        resolve_image(spec["image"])
    probe = spec if "image_prompt" in spec or "image" in spec else {**spec, "image": RUN_TIME_IMAGE}
    parse_spec(probe)
    return spec


def checked_definition(given: dict[str, Any] | str) -> PipelineDefinition:
    """Parse (never as a file path: a client names no server file) and check the whole definition."""
    definition = from_mapping(parse_text(given) if isinstance(given, str) else given)
    check_definition(definition)
    return definition


def stored(definition: PipelineDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_defaults=True)


def checked_name(name: str) -> str:
    if not name.strip():
        raise SpecError("name", "must not be empty")
    return name.strip()


async def _read_body(request: Request, model: type[BaseModel]) -> Any:
    """The JSON body as ``model``, or a YAML body as ``model(definition=<text>)``."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise SpecError("definition", f"the body is larger than {MAX_BODY} bytes")
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        if kind in YAML_TYPES:
            return model.model_validate({"definition": raw.decode("utf-8")})
        if kind != "application/json":
            raise SpecError("content-type", f"'{kind}' is not accepted; send application/json or application/yaml")
        return model.model_validate_json(raw or b"{}")
    except UnicodeDecodeError:
        raise SpecError("definition", "the body is not UTF-8 text") from None
    except ValidationError as exc:
        field, message = validation_message(exc)
        raise SpecError(field or "body", message) from None


def _out(view: pipelines.PipelineView) -> PipelineOut:
    return PipelineOut.model_validate({**view.model_dump(),
                                       "warnings": pipeline_builder.model_warnings(view.definition)})


def _one_of(definition: Any, spec: Any) -> None:
    if definition is not None and spec is not None:
        raise SpecError("definition", "give a definition or a spec, not both")


@router.post("", status_code=201, response_model=PipelineOut, dependencies=[Depends(require_token)],
             responses=ERRORS, openapi_extra=_body_doc(PipelineIn))
async def create(request: Request) -> PipelineOut:
    """Save a pipeline: a definition (JSON object, YAML text, or a YAML body), or a one-video spec."""
    body: PipelineIn = await _read_body(request, PipelineIn)
    _one_of(body.definition, body.spec)
    if body.spec is not None:
        if body.name is None:
            raise SpecError("name", "is required with a spec")
        return _out(pipelines.create_pipeline(checked_name(body.name), spec=checked_spec(body.spec)))
    if body.definition is None:
        raise SpecError("definition", "is required: a pipeline definition (JSON object or YAML text, see "
                        "`reelflow pipeline schema`), or the panel's one-video 'spec'")
    definition = checked_definition(body.definition)
    name = checked_name(body.name if body.name is not None else definition.name)
    return _out(pipelines.create_pipeline(name, definition=stored(definition)))


@router.post("/estimate", response_model=EstimateOut, responses={422: ERRORS[422], 404: ERRORS[404]})
def estimate(body: EstimateIn) -> EstimateOut:
    """Price each step and the total before anything runs: fan-out and variants counted, money as exact
    decimal text, an unknown price null (not zero)."""
    if (body.definition is None) == (body.pipeline_id is None):
        raise SpecError("definition", "give a definition or a pipeline_id (not both)")
    if body.pipeline_id is not None:
        given: dict[str, Any] | str = (pipelines.get_version(body.pipeline_id, body.version) if body.version
                                       else pipelines.get_pipeline(body.pipeline_id).definition)
    else:
        given = body.definition or {}
    definition = checked_definition(given)
    found = price(definition, body.inputs, gpu_usd_per_hour=body.gpu_usd_per_hour, gpu_seconds=body.gpu_seconds)
    return EstimateOut.model_validate({"pipeline": definition.name, **found.as_json()})


class CheckIn(BaseModel):
    """A definition to check without saving (JSON object or YAML text), and inputs to price it with."""

    model_config = ConfigDict(extra="forbid", strict=True)

    definition: dict[str, Any] | str
    inputs: dict[str, Any] = Field(default_factory=dict, max_length=200)


class Problem(BaseModel):
    step: str | None = Field(description="The step's id; null for the pipeline itself or its inputs.")
    field: str
    message: str


class CheckOut(BaseModel):
    valid: bool
    errors: list[Problem] = Field(description="Every problem found, each on its step and field.")
    warnings: list[Problem] = Field(description="Steps whose model cannot run here yet (and why).")
    definition: dict[str, Any] | None = Field(description="The definition as JSON (null when the YAML does not parse).")
    yaml: str | None = Field(description="The definition as YAML (the text given, when YAML was given).")
    estimate: EstimateOut | None = Field(description="Per step and total, when the definition is valid; a required "
                                         "input not given is priced with a stand-in.")


@router.get("/palette")
def palette() -> dict[str, Any]:
    """The builder's palette: each step kind with its fields (and the value type each reference must carry), its
    outputs, params and the catalog models it takes; every model with its availability and input ranges."""
    return pipeline_builder.palette()


@router.post("/check", response_model=CheckOut, openapi_extra=_body_doc(CheckIn), responses={422: {
    "description": "The definition has problems: the usual error ('field' and 'detail' name the first and each "
    "one) with the whole check (every error on its step and field, warnings, JSON and YAML forms) beside it; a "
    "body that is not a check request: the usual error only"}})
async def check(request: Request) -> Any:
    """Check a definition without saving it: 200 when it is valid, 422 with every error on its step and field
    otherwise; either way the warnings, the YAML form of a JSON definition and the JSON form of a YAML one, and
    (valid) the estimate."""
    body: CheckIn = await _read_body(request, CheckIn)
    found = CheckOut.model_validate(pipeline_builder.check(body.definition, body.inputs))
    if found.valid:
        return found
    where = [(["steps", e.step, *e.field.split(".")] if e.step else e.field.split(".")) for e in found.errors]
    first = found.errors[0]
    return JSONResponse(status_code=422, content={
        "error": first.message, "field": ".".join(where[0]),
        "detail": [{"loc": loc, "msg": e.message} for loc, e in zip(where, found.errors, strict=True)],
        **found.model_dump(mode="json")})


@router.get("", response_model=PipelinePage)
def list_all(limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0, le=2**62)) -> PipelinePage:
    found, total = pipelines.list_pipelines(limit=limit, offset=offset)
    return PipelinePage(total=total, pipelines=[_out(p) for p in found])


@router.get(ONE, response_model=PipelineOut, responses={404: ERRORS[404], 422: ERRORS[422]})
def get(pipeline_id: str = PipelineId, version: int | None = Query(None, ge=1, description=(
        "An earlier version's definition (default: the latest)."))) -> PipelineOut:
    view = pipelines.get_pipeline(pipeline_id)
    if version is not None and version != view.version:
        view = view.model_copy(update={"definition": pipelines.get_version(pipeline_id, version),
                                       "version": version})
    return _out(view)


@router.put(ONE, response_model=PipelineOut, dependencies=[Depends(require_token)], responses=ERRORS,
            openapi_extra=_body_doc(PipelinePatch))
async def update(request: Request, pipeline_id: str = PipelineId) -> PipelineOut:
    """Rename a pipeline and/or replace its definition (a new version when it changed) or its spec."""
    body: PipelinePatch = await _read_body(request, PipelinePatch)
    _one_of(body.definition, body.spec)
    pipelines.get_pipeline(pipeline_id)  # 404 before 422
    spec = checked_spec(body.spec) if body.spec is not None else None
    definition = stored(checked_definition(body.definition)) if body.definition is not None else None
    name = checked_name(body.name) if body.name is not None else None
    return _out(pipelines.update_pipeline(pipeline_id, name=name, definition=definition, spec=spec))


@router.delete(ONE, status_code=204, response_class=Response, dependencies=[Depends(require_token)],
               responses=ERRORS)
def delete(pipeline_id: str = PipelineId) -> Response:
    pipelines.delete_pipeline(pipeline_id)
    return Response(status_code=204)


