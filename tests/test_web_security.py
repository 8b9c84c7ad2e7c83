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
from collections.abc import Iterator
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
from tests.support.settings_env import SetEnv
from tests.support.web_api import Served, error_of, serve_api

LOCAL = {"model": "local-kenburns", "prompt": "drift", "duration": 1.0, "fps": 8, "resolution": "160x96"}



@pytest.fixture()
def anon(api: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield http





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


# --- 3. secrets bound to their origin -----------------------------------------------------------------

@contextmanager
def header_recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server on 127.0.0.1 answering 404 to everything and recording each request's headers."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_error(404)

        do_GET = do_POST = _record

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_moving_the_gpu_url_drops_the_tunnel_secrets(client: httpx.Client, gpu_block: str) -> None:
    secrets = {"portal_token": "portal-secret-123", "tunnel_auth_header_name": "CF-Access-Client-Secret",
               "tunnel_auth_header_value": "cf-secret-456", "tunnel_auth_cookie": "auth=cookie-secret-789"}
    saved = client.put("/api/gpu/config", params={"verify": "false"},
                       json={"gpu_provider": "vastai", "comfyui_url": "https://gpu.example.com", **secrets})
    assert saved.status_code == 200, saved.text
    with header_recorder() as (other, seen):
        moved = client.put("/api/gpu/config", json={"gpu_provider": "local", "comfyui_url": other})
        assert error_of(moved, 422)[0] == "comfyui_url"
        assert seen, "the new URL was checked"
        sent = " ".join(f"{k}: {v}" for request in seen for k, v in request.items())
        assert not any(value in sent for value in ("portal-secret-123", "cf-secret-456", "cookie-secret-789")), sent
        moved = client.put("/api/gpu/config", params={"verify": "false"}, json={"comfyui_url": other})
        assert moved.status_code == 200 and moved.json()["portal_token"] is None
    block = GpuEndpoint.load(gpu_block)
    assert block.portal_token is None and block.tunnel_auth_cookie is None and block.tunnel_auth_header_value is None
    again = client.put("/api/gpu/config", params={"verify": "false"},
                       json={"comfyui_url": "https://other.example.com", "portal_token": "new-token"})
    assert again.status_code == 200 and GpuEndpoint.load(gpu_block).portal_token.get_secret_value() == "new-token"
    same_origin = client.put("/api/gpu/config", params={"verify": "false"},
                             json={"comfyui_url": "https://other.example.com/comfy"})
    assert same_origin.status_code == 200 and GpuEndpoint.load(gpu_block).portal_token is not None


def test_the_vast_api_url_is_not_settable_over_http(client: httpx.Client, gpu_block: str) -> None:
    with header_recorder() as (other, seen):
        field, message = error_of(client.put("/api/gpu/config", json={"gpu_provider": "local",
                                                                       "vastai_api_url": other}), 422)
        assert field == "vastai_api_url" and "reelflow gpu set" in message
        assert client.get("/api/gpu/config").json()["saved"] is False
    assert seen == []
    default = client.get("/api/gpu/config").json()["vastai_api_url"]
    assert client.put("/api/gpu/config", json={"vastai_api_url": default}).status_code == 200


def test_vast_instances_need_the_token(anon: httpx.Client, client: httpx.Client, gpu_block: str) -> None:
    with VastEmulator() as vast:
        GpuEndpoint(provider="vastai", vastai_api_url=vast.url, vastai_api_key=API_KEY,
                    vastai_instance_id=DEFAULT_INSTANCE_ID).save(gpu_block, overwrite=True)
        error_of(anon.get("/api/vastai/instances"), 401)
        assert client.get("/api/vastai/instances").status_code == 200


def test_gpu_secrets_from_the_environment_or_a_hidden_prompt(gpu_block: str) -> None:
    """`reelflow gpu set` as users run it, without the secrets on its command line."""
    command = [sys.executable, "-m", "reelflow.cli.main", "gpu", "set", "--name", gpu_block]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "REELFLOW_PORTAL_TOKEN": "env-portal-secret",
                   "REELFLOW_TUNNEL_HEADER": "X-Tunnel-Auth: env-header-secret",
                   "REELFLOW_TUNNEL_COOKIE": "auth=env-cookie-secret"}
    done = subprocess.run([*command, "--comfyui-url", "https://gpu.example.com"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert GpuEndpoint.load(gpu_block).auth_headers() == {
        "Authorization": "Bearer env-portal-secret", "X-Tunnel-Auth": "env-header-secret",
        "Cookie": "auth=env-cookie-secret"}
    environment = {k: v for k, v in environment.items() if not k.startswith(("REELFLOW_PORTAL", "REELFLOW_TUNNEL"))}
    done = subprocess.run([*command, "--portal-token", "-"], cwd=ROOT, env=environment, input="typed-secret\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "typed-secret" not in done.stdout + done.stderr
    assert GpuEndpoint.load(gpu_block).portal_token.get_secret_value() == "typed-secret"


def test_urls_discovered_through_the_portal_are_guarded(gpu_block: str) -> None:
    """`reelflow vast start --wait` as users run it: a tunnel URL on a private address is not saved."""
    with VastEmulator() as vast:
        vast.configure(loading_polls=0, tunnels=[{"targetUrl": "http://localhost:18188",
                                                   "tunnelUrl": "http://10.11.12.13:8188"}])
        GpuEndpoint(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
                    vastai_api_url=vast.url, comfyui_url="https://comfy.example.com",
                    portal_token=PORTAL_TOKEN).save(gpu_block, overwrite=True)
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "REELFLOW_ALLOW_PRIVATE_URLS": "false"}
        done = subprocess.run([sys.executable, "-m", "reelflow.cli.main", "vast", "start", "--name", gpu_block,
                               "--wait", "--timeout", "30"], cwd=ROOT, env=environment, capture_output=True,
                              text=True, timeout=120)
    said = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0 and "comfyui_url: '10.11.12.13' resolves to a non-public address" in said, said
    assert GpuEndpoint.load(gpu_block).comfyui_url == "https://comfy.example.com"


# --- 4. the SSRF guard and malformed input ----------------------------------------------------------

REBIND_SCRIPT = textwrap.dedent("""
    import socket, sys
    real = socket.getaddrinfo
    lookups = []
    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
    socket.getaddrinfo = rebinding
    from reelflow.core.inputs import load_image
    from reelflow.errors import SpecError
    try:
        load_image(sys.argv[1])
    except SpecError as exc:
        print("refused:", exc)
    else:
        print("fetched")
""")


def test_a_rebinding_name_cannot_reach_a_private_address(tmp_path: Path) -> None:
    """A plain script in a fresh interpreter whose DNS answers a public address first, then 127.0.0.1."""
    make_image(tmp_path / "in.png", (32, 32))
    seen: list[str] = []
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment.update(REELFLOW_ALLOW_PRIVATE_URLS="false", REELFLOW_DOWNLOAD_TIMEOUT_S="3", PYTHONPATH=str(ROOT))
    with file_server(tmp_path, seen) as base:
        port = base.rsplit(":", 1)[1]
        done = subprocess.run([sys.executable, "-c", REBIND_SCRIPT, f"http://rebind.test:{port}/in.png"], cwd=ROOT,
                              env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused:"), done.stdout
    assert seen == [], "the private server was reached"


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/a.png", "http://127.0.0.1:abc/a.png",
                                 "http://" + "a" * 64 + ".example.com/a.png", "http://a..b/a.png"])
def test_malformed_urls_are_422(client: httpx.Client, gpu_block: str, url: str) -> None:
    field, _ = error_of(client.post("/api/runs", json={**LOCAL, "image": url}), 422)
    assert field == "image"
    for provider in ("local", "vastai"):
        field, message = error_of(client.put("/api/gpu/config", json={"gpu_provider": provider, "comfyui_url": url}),
                                  422)
        assert field == "comfyui_url", message


def test_huge_numbers_are_422(client: httpx.Client) -> None:
    body = {**LOCAL, "image": "https://example.com/a.png", "duration": None, "frames": 10**400}
    assert error_of(client.post("/api/runs", json=body), 422)[0] == "frames"
    pipeline = {"name": "huge", "spec": {"model": "local-kenburns", "frames": 10**400}}
    assert error_of(client.post("/api/pipelines", json=pipeline), 422)[0] == "spec.frames"


@pytest.mark.parametrize("last_id", ["\xb2", "9" * 5000, "12a"])
def test_bad_last_event_id_is_400(client: httpx.Client, last_id: str) -> None:
    for path in ("/api/events", "/api/runs/nope/events"):
        with client.stream("GET", path, headers={"Last-Event-ID": last_id.encode("latin-1")}) as response:
            if response.status_code != 200:  # a 200 is an event stream that never ends: fail on it unread
                response.read()
            field, message = error_of(response, 400)
        assert field == "Last-Event-ID" and "event id" in message


# --- 5. files and images --------------------------------------------------------------------------

def test_media_does_not_follow_symlinks_out_of_storage(client: httpx.Client, home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    link = home / "storage" / "images" / "ee" / ("e" * 64 + ".png")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    error_of(client.get(f"/api/media/images/ee/{'e' * 64}.png"), 404)


def corrupt_idat_png() -> bytes:
    """A PNG whose header and chunk CRCs are right but whose IDAT stream is cut short."""
    raw = png_bytes(size=(64, 64))
    start = raw.index(b"IDAT") - 4
    length = int.from_bytes(raw[start:start + 4], "big")
    data = raw[start + 8:start + 8 + length]
    broken = zlib.compress(zlib.decompress(data)[: len(zlib.decompress(data)) // 3])
    chunk = len(broken).to_bytes(4, "big") + b"IDAT" + broken + zlib.crc32(b"IDAT" + broken).to_bytes(4, "big")
    return raw[:start] + chunk + raw[start + 12 + length:]


def test_a_damaged_png_is_refused_at_upload(client: httpx.Client) -> None:
    field, message = error_of(client.post("/api/uploads", files={"file": ("bad.png", corrupt_idat_png(),
                                                                          "image/png")}), 415)
    assert field == "file" and "damaged or incomplete" in message and "PNG, JPEG, WEBP" in message
    field, message = error_of(client.post("/api/uploads", files={"file": ("a.txt", b"hello", "text/plain")}), 415)
    assert "allowed formats: PNG, JPEG, WEBP" in message and "UnidentifiedImageError" not in message


def test_input_pixels_are_capped_by_a_setting(client: httpx.Client, env: SetEnv) -> None:
    big = io.BytesIO()
    Image.new("RGBA", (8000, 8000)).save(big, "PNG")
    field, message = error_of(client.post("/api/uploads", files={"file": ("big.png", big.getvalue(), "image/png")}),
                              413)
    assert field == "file" and "REELFLOW_MAX_INPUT_PIXELS" in message and "40000000" in message
    env(REELFLOW_MAX_INPUT_PIXELS="1000")
    field, _ = error_of(client.post("/api/uploads", files={"file": ("s.png", png_bytes(size=(40, 40)), "image/png")}),
                        413)


def _raw_request(api: Served, head: bytes, body: bytes, wait_s: float) -> bytes:
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        sock.sendall(head + body)
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() - started < wait_s:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def test_an_oversized_declared_body_gets_413_at_once(api: Served) -> None:
    token = read_api_token()
    head = (f"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n").encode()
    started = time.monotonic()
    answer = _raw_request(api, head, b'{"prompt": "', wait_s=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 5


def test_a_stalled_body_times_out(api: Served, env: SetEnv) -> None:
    env(REELFLOW_BODY_TIMEOUT_S="1")
    token = read_api_token()
    head = (f"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode()
    answer = _raw_request(api, head, b'{"prompt": "', wait_s=15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_url_the_portal_hands_out_at_run_time_is_guarded_before_it_sees_a_credential(gpu_block: str) -> None:
    """The saved ComfyUI URL is down, so reelflow asks the portal for a fresh one: a private one is refused
    before any request (and so any tunnel credential) reaches it."""
    import asyncio

    from reelflow.errors import GpuUnreachableError
    from reelflow.gpu.reach import probe_for, reach

    with header_recorder() as (private_url, seen), VastEmulator() as vast:
        vast.configure(loading_polls=0, tunnels=[{"targetUrl": "http://localhost:18188", "tunnelUrl": private_url}])
        gpu = GpuEndpoint(provider="vastai", vastai_instance_id=DEFAULT_INSTANCE_ID, vastai_api_key=API_KEY,
                          vastai_api_url=vast.url, comfyui_url="https://comfy.invalid", portal_token=PORTAL_TOKEN,
                          tunnel_auth_header_name="CF-Access-Client-Secret", tunnel_auth_header_value="cf-secret")
        previous = os.environ.get("REELFLOW_ALLOW_PRIVATE_URLS")
        os.environ["REELFLOW_ALLOW_PRIVATE_URLS"] = "false"
        reload_settings()
        try:
            with pytest.raises(GpuUnreachableError, match="Instance Portal's ComfyUI URL is refused"):
                asyncio.run(reach(gpu, gpu_block, "comfyui", probe_for(gpu, "comfyui")))
        finally:
            os.environ["REELFLOW_ALLOW_PRIVATE_URLS"] = previous or "true"
            reload_settings()
    assert seen == []


def test_a_token_file_written_anew_is_the_token_at_the_next_read(env: SetEnv, tmp_path: Path) -> None:
    env(REELFLOW_HOME=str(tmp_path / "home"))
    path = tmp_path / "home" / "api-token"
    path.parent.mkdir()
    path.write_text("first-token-" + "a" * 30 + "\n")
    assert read_api_token() == "first-token-" + "a" * 30
    assert read_api_token() == "first-token-" + "a" * 30  # remembered while the file is the same
    path.write_text("second-token-" + "b" * 40 + "\n")
    assert read_api_token() == "second-token-" + "b" * 40
    path.unlink()
    assert read_api_token() is None
