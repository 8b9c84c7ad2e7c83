"""The REST API secure by default (issue 17): token or session cookie + header, Host allow-list, security headers,
secrets bound to their origin, the SSRF guard on the connected address, and files and images checked fully."""

from __future__ import annotations

import http.server
import io
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.api_token import read_api_token
from reelflow.settings import reload_settings
from tests.emulators.common.media import png_bytes
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN, VastEmulator
from tests.support.cli import ROOT
from tests.support.files import file_server, make_image
from tests.support.polling import wait_until
from tests.support.web_api import Served, error_of, serve_api

SetEnv = Callable[..., None]
LOCAL = {"model": "local-kenburns", "prompt": "drift", "duration": 1.0, "fps": 8, "resolution": "160x96"}


@pytest.fixture(scope="module")
def api() -> Iterator[Served]:
    with serve_api() as served:
        yield served


@pytest.fixture()
def anon(api: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http


@pytest.fixture()
def client(api: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30, headers=api.headers) as http:
        yield http


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        reload_settings()

    yield set_env
    monkeypatch.undo()
    reload_settings()


@pytest.fixture()
def gpu_block(env: SetEnv, request: pytest.FixtureRequest) -> str:
    name = "sec-" + request.node.name.lower().replace("_", "-")[:40]
    env(REELFLOW_GPU_BLOCK=name)
    return name


# --- 1. drive-by requests and DNS rebinding -------------------------------------------------------

def test_the_token_file_is_made_once_and_private(api: Served, home: Path) -> None:
    path = home / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_api_token() == path.read_text().strip() and len(path.read_text().strip()) >= 32


def test_a_cross_site_form_cannot_upload_cancel_or_retry(anon: httpx.Client) -> None:
    form = anon.post("/api/uploads", files={"file": ("a.png", png_bytes(), "image/png")},
                     headers={"Origin": "https://evil.example"})
    assert error_of(form, 401)[0] == "authorization"
    for path in ("/api/runs/some-run/cancel", "/api/runs/some-run/retry"):
        error_of(anon.post(path), 401)


def test_every_endpoint_but_health_needs_the_token(anon: httpx.Client, api: Served) -> None:
    calls = [("GET", "/api/runs"), ("GET", "/api/runs/x"), ("GET", "/api/runs/x/events"), ("GET", "/api/events"),
             ("GET", "/api/media/images/ab/" + "a" * 64 + ".png"), ("GET", "/api/vastai/instances"),
             ("GET", "/api/gpu/config"), ("GET", "/api/pipelines"), ("GET", "/api/models"),
             ("POST", "/api/runs"), ("PUT", "/api/gpu/config"), ("DELETE", "/api/pipelines/x"),
             ("POST", "/api/vastai/instances/1/start"), ("POST", "/api/swarm/generate-video")]
    for method, path in calls:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}):
            response = anon.request(method, path, headers=headers)
            assert error_of(response, 401)[0] == "authorization", (method, path)
    health = anon.get("/api/health")
    assert health.status_code == 200 and health.json()["auth_required"] is True
    assert anon.get("/api/runs", headers=api.headers).status_code == 200


def test_the_panel_session_cookie_needs_the_header_on_writes(api: Served) -> None:
    token = read_api_token()
    with httpx.Client(base_url=api.url, timeout=30) as browser:
        error_of(browser.post("/api/session", json={"token": "wrong"}), 401)
        assert browser.get("/api/session").json() == {"auth_required": True, "authenticated": False}
        login = browser.post("/api/session", json={"token": token})
        assert login.status_code == 204
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
        assert browser.get("/api/session").json()["authenticated"] is True
        assert browser.get("/api/runs").status_code == 200
        image = {"file": ("a.png", png_bytes((1, 2, 3)), "image/png")}
        field, message = error_of(browser.post("/api/uploads", files=image), 403)
        assert field == "x-reelflow-request" and "X-Reelflow-Request: 1" in message
        assert browser.post("/api/uploads", files=image, headers={"X-Reelflow-Request": "1"}).status_code == 201
        assert browser.delete("/api/session").status_code == 204
        error_of(browser.get("/api/runs"), 401)


def test_a_rebinding_host_is_refused(client: httpx.Client, gpu_block: str) -> None:
    evil = {"Host": "evil.example"}
    pipeline = {"json": {"name": "x", "spec": {"model": "local-kenburns"}}}
    gpu = {"json": {"idle_stop_minutes": 5}}
    for method, path, kwargs in [("POST", "/api/pipelines", pipeline), ("DELETE", "/api/pipelines/x", {}),
                                 ("GET", "/api/runs", {}), ("PUT", "/api/gpu/config", gpu)]:
        response = client.request(method, path, headers=evil, **kwargs)
        assert response.status_code == 400, (method, path, response.status_code)
    assert client.get("/api/gpu/config").json()["saved"] is False
    assert client.get("/api/health", headers={"Host": "localhost"}).status_code == 200


def test_security_headers_on_every_answer(anon: httpx.Client) -> None:
    for path in ("/", "/api/health", "/api/runs", "/api/nothing"):
        headers = anon.get(path).headers
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_serve_keeps_the_token_out_of_its_log(tmp_path: Path) -> None:
    """`reelflow serve` as users run it: the login URL's query never reaches the (redirected) log."""
    home = tmp_path / "home"
    port = _free_port()
    log = tmp_path / "panel.log"
    environment = {k: v for k, v in os.environ.items() if k != "REELFLOW_API_TOKEN"}
    environment.update(REELFLOW_HOME=str(home), PYTHONPATH=str(ROOT))
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "reelflow.cli.main", "serve", "--port", str(port)],
                                   cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/api/health"), timeout=120, what="reelflow serve")
        token = (home / "api-token").read_text().strip()
        assert stat.S_IMODE((home / "api-token").stat().st_mode) == 0o600
        assert httpx.get(f"{base}/?token={token}&x=1", timeout=10).status_code == 200
        assert httpx.get(f"{base}/api/runs?limit=1", headers={"Authorization": f"Bearer {token}"},
                         timeout=10).status_code == 200
        wait_until(lambda: log.read_text().count('"GET /api/runs HTTP') == 1, timeout=30, what="access log")
        text = log.read_text()
        assert token not in text and '"GET /?' not in text and '"GET / HTTP/1.1" 200' in text, text
        assert "log in to the panel" in text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_auth_off_is_explicit_and_loud(env: SetEnv, caplog: pytest.LogCaptureFixture) -> None:
    env(REELFLOW_API_AUTH="off")
    with caplog.at_level("WARNING", logger="reelflow.web"), serve_api() as open_api:
        assert httpx.get(f"{open_api.url}/api/runs", timeout=30).status_code == 200
        assert httpx.get(f"{open_api.url}/api/health", timeout=30).json()["auth_required"] is False
    assert any("REELFLOW_API_AUTH=off" in r.getMessage() for r in caplog.records)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
