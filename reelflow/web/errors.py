"""Errors as JSON ``{"error": message, "field": field}``: 4xx for bad input, never a 500 for it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from reelflow.errors import (
    ApiError,
    ModelUnavailableError,
    PipelineDefinitionError,
    PipelineNotFoundError,
    ReelflowError,
    RunNotFoundError,
    SpecError,
)

log = logging.getLogger("reelflow.web")

LOCATIONS = ("body", "query", "path", "header", "cookie")


def error_response(status: int, message: str, field: str | None = None, *,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "field": field, **extra}, status_code=status, headers=headers)


def field_of(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] in LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or None


def validation_message(exc: ValidationError | RequestValidationError) -> tuple[str | None, str]:
    """The first problem as (field, message); ``"field: message"`` value errors name their own field."""
    first = exc.errors()[0]
    field = field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    named, sep, rest = message.partition(": ")
    if not (sep and named.isidentifier()):
        return field, message
    if field is None or field == named or field.endswith("." + named):
        return field or named, rest
    return f"{field}.{named}", rest


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.message, exc.field, headers=exc.headers, **exc.extra)


async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
    return error_response(422, exc.message, exc.field)


async def _definition_error(_: Request, exc: PipelineDefinitionError) -> JSONResponse:
    loc = ["steps", exc.step, *exc.step_field.split(".")] if exc.step else exc.step_field.split(".")
    return error_response(422, exc.message, exc.field, detail=[{"loc": loc, "msg": exc.message}])


async def _unavailable(_: Request, exc: ModelUnavailableError) -> JSONResponse:
    return error_response(409, str(exc), "model", missing=exc.missing)


async def _not_found(_: Request, exc: RunNotFoundError | PipelineNotFoundError) -> JSONResponse:
    field = "run_id" if isinstance(exc, RunNotFoundError) else "pipeline_id"
    return error_response(404, str(exc), field)


async def _too_many_pixels(_: Request, exc: Image.DecompressionBombError) -> JSONResponse:
    return error_response(422, f"the image has too many pixels to open safely ({exc})", "image")


async def _reelflow_error(_: Request, exc: ReelflowError) -> JSONResponse:
    return error_response(409, str(exc))


async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    field, message = validation_message(exc)
    return error_response(422, message, field)


def _leaf_routes(routes: list[Any]) -> Iterator[Route]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router, in newer FastAPI
        if inner is not None:
            yield from _leaf_routes(inner.routes)
        elif isinstance(route, Route):
            yield route


def allowed_methods(request: Request) -> str:
    """Every method some route offers for this path (Starlette's own 405 names only the first route's)."""
    methods: set[str] = set()
    for route in _leaf_routes(request.app.routes):
        if route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_response(exc.status_code, str(exc.detail), headers=headers or None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(PipelineDefinitionError, _definition_error)
    app.add_exception_handler(ModelUnavailableError, _unavailable)
    app.add_exception_handler(RunNotFoundError, _not_found)
    app.add_exception_handler(PipelineNotFoundError, _not_found)
    app.add_exception_handler(ReelflowError, _reelflow_error)
    app.add_exception_handler(Image.DecompressionBombError, _too_many_pixels)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
