"""The ``/_admin`` routes every emulator has, for tests and for a developer driving one by hand:
``GET|POST /_admin/config`` (the JSON body's knobs are set; the knobs after are returned), ``GET /_admin/stats``
and one ``POST /_admin/<name>`` per action (its result, or ``{"ok": true}`` when it returns nothing)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import asdict, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Action = Callable[[], Any]


def apply_knobs(config: Any, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """Set ``knobs`` on the config dataclass (none of them when one is unknown); returns every knob after."""
    unknown = set(knobs) - {f.name for f in fields(config)}
    if unknown:
        raise ValueError(f"unknown knobs: {sorted(unknown)}")
    for name, value in knobs.items():
        setattr(config, name, value)
    return asdict(config)


def admin_routes(configure: Callable[..., dict[str, Any]], stats: Callable[[], dict[str, Any]],
                 actions: Mapping[str, Action]) -> list[Route]:
    """``configure(**knobs)`` answers ``/_admin/config``, ``stats()`` answers ``/_admin/stats``; an action may be a
    coroutine function (run in the server's event loop)."""

    async def config(request: Request) -> JSONResponse:
        knobs = await request.json() if request.method == "POST" else {}
        return JSONResponse(configure(**knobs))

    async def read_stats(request: Request) -> JSONResponse:
        return JSONResponse(stats())

    def route(name: str, action: Action) -> Route:
        async def run(request: Request) -> JSONResponse:
            result = action()
            if inspect.isawaitable(result):
                result = await result
            return JSONResponse({"ok": True} if result is None else result)

        return Route(f"/_admin/{name}", run, methods=["POST"])

    return [Route("/_admin/config", config, methods=["GET", "POST"]),
            Route("/_admin/stats", read_stats, methods=["GET"]),
            *(route(name, action) for name, action in actions.items())]
