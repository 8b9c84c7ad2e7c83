"""Unknown query parameters are refused (a typo such as ``?limt=5`` gets a 422 naming it, not silence), and so is
a parameter given more than once (every one takes a single value: which one was meant is not ours to guess)."""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from reelflow.errors import ApiError


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _allowed(route: APIRoute) -> set[str]:
    cached = getattr(route, "_reelflow_query_names", None)
    if cached is None:
        cached = _query_names(route.dependant)
        route._reelflow_query_names = cached  # type: ignore[attr-defined]
    return cached


async def reject_unknown_query(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    allowed = _allowed(route)
    for name in request.query_params:
        if name not in allowed:
            hint = f"allowed: {', '.join(sorted(allowed))}" if allowed else "this endpoint takes none"
            raise ApiError(422, f"unknown query parameter '{name[:50]}'; {hint}", name[:50])
        if (times := len(request.query_params.getlist(name))) > 1:
            raise ApiError(422, f"query parameter '{name}' is given {times} times; give it once", name)
