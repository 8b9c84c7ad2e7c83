"""Helpers for the web tests: serve the API on a free port, read Server-Sent Events, set env for a test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from reelflow.core.api_token import read_api_token
from reelflow.core.domain import Via
from reelflow.runs.launcher import Launcher
from reelflow.web import create_app
from tests.emulators.common.server import ServerThread


@dataclass
class Served:
    url: str
    launcher: Launcher

    @property
    def headers(self) -> dict[str, str]:
        return auth_headers()


def auth_headers() -> dict[str, str]:
    """The bearer token the way the CLI and scripts find it (REELFLOW_API_TOKEN, else $REELFLOW_HOME/api-token)."""
    token = read_api_token()
    assert token, "the server should have created its token file"
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serve_api(max_parallel: int = 2, via: Via = "local") -> Iterator[Served]:
    """The real app under uvicorn on 127.0.0.1 (a thread of this process, so settings changes apply)."""
    launcher = Launcher(max_parallel=max_parallel, via=via)
    server = ServerThread(create_app(launcher=launcher), name="reelflow-api")
    server.start()
    try:
        yield Served(url=f"http://127.0.0.1:{server.port}", launcher=launcher)
    finally:
        launcher.shutdown()
        server.stop()


@dataclass(frozen=True)
class SseMessage:
    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def sse_messages(response: httpx.Response, deadline: float | None = None) -> Iterator[SseMessage]:
    """Parse a text/event-stream response as it arrives (comments and pings are skipped); with a
    ``time.monotonic()`` deadline, fail on the first line (a ping included) that arrives after it."""
    event, data, last_id = "message", [], None
    for line in response.iter_lines():
        assert deadline is None or time.monotonic() < deadline, f"the event stream was still open: {data}"
        if not line:
            if data:
                yield SseMessage(event=event, data="\n".join(data), id=last_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            last_id = value


def error_of(response: httpx.Response, status: int) -> tuple[str | None, str]:
    """Assert the API's error shape and status; returns (field, message)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) >= {"error", "field"} and isinstance(body["error"], str) and body["error"], body
    return body["field"], body["error"]


def answers(base_url: str) -> bool:
    """Whether a REST API at ``base_url`` answers its health check now."""
    try:
        return httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
