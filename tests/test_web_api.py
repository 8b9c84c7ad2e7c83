"""The REST API over real HTTP: bad input gives 4xx JSON naming the field; runs render and stream over SSE."""

from __future__ import annotations

import http.server
import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from PIL import Image

from blocks.gpu_endpoint import MASK, GpuEndpoint
from reelflow.core.media import probe_video
from reelflow.runs.prepare import prepare_run
from reelflow.storage import get_storage
from reelflow.storage.keys import RunKey
from reelflow.store import repo
from reelflow.web.services.images import resolve_image
from tests.emulators.comfyui import ComfyEmulator
from tests.emulators.common.media import Colour, png_bytes
from tests.emulators.swarmui import SwarmEmulator
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, VastEmulator
from tests.support.files import file_server, make_image
from tests.support.gpu import save_gpu
from tests.support.polling import wait_until
from tests.support.settings_env import SetEnv
from tests.support.web_api import Served, error_of, serve_api, sse_messages

LOCAL = {"model": "local-kenburns", "prompt": "drift", "duration": 1.0, "fps": 8, "resolution": "160x96"}
SECRETS = {"vastai_api_key": API_KEY, "portal_token": "portal-secret-123",
           "tunnel_auth_header_name": "CF-Access-Client-Secret", "tunnel_auth_header_value": "cf-secret-456",
           "tunnel_auth_cookie": "auth=cookie-secret-789"}







UPLOAD_SIZE = (200, 120)


def shade(seed: int) -> Colour:
    """A colour per seed, so that uploads of different seeds are different files."""
    return (seed * 37) % 256, 90, 160


def pixel_bomb() -> bytes:
    """A tiny PNG whose header claims 30000 x 30000 pixels."""
    data = bytearray(png_bytes(size=(8, 8)))
    header = bytearray(data[16:29])
    header[0:8] = struct.pack(">II", 30000, 30000)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)))
    return bytes(data)


def upload(client: httpx.Client, data: bytes, name: str = "in.png", content_type: str = "image/png",
           headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/api/uploads", files={"file": (name, data, content_type)}, headers=headers)


def uploaded(client: httpx.Client, seed: int) -> str:
    response = upload(client, png_bytes(shade(seed), UPLOAD_SIZE))
    assert response.status_code == 201, response.text
    return response.json()["image"]


def follow_run(client: httpx.Client, run_id: str, within_s: float = 300.0) -> list[dict[str, Any]]:
    """Every event of the run from its SSE stream, until the stream's 'end' (at most ``within_s``)."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for message in sse_messages(response, deadline):
            if message.event == "end":
                return events
            event = message.json()
            assert message.id == str(event["id"]) and event["run_id"] == run_id
            events.append(event)
    raise AssertionError(f"the stream closed without 'end' after {events}")


@contextmanager
def counting_server(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``root`` on 127.0.0.1 and record every path asked for."""
    seen: list[str] = []
    with file_server(root, seen) as base:
        yield base, seen


# --- health and models ---------------------------------------------------------------------------

def test_health(client: httpx.Client) -> None:
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["auth_required"] is True
    assert body["prefect_api_url"].startswith("http://127.0.0.1:")


def test_models_with_availability_and_price(client: httpx.Client) -> None:
    models = {m["id"]: m for m in client.get("/api/models").json()}
    local = models["local-kenburns"]
    assert local["available"] is True and local["missing"] == [] and local["ai"] is False
    assert local["price"] == {"unit": "free", "text": "free", "estimate_usd": 0.0, "source": None, "confirmed": True}
    assert local["speed_hint"] and local["inputs"]["duration_range"] == [0.5, 30.0]
    wan = client.get("/api/models/wan-2.5-i2v", params={"duration": 10, "resolution": "1080p"}).json()
    assert wan["price"]["estimate_usd"] == pytest.approx(1.5) and "$0.15 at 1080p" in wan["price"]["text"]
    kling = client.get("/api/models/kling-2.1-master-i2v", params={"duration": 10}).json()
    assert kling["price"]["estimate_usd"] == pytest.approx(1.40 + 5 * 0.28)
    shortest = client.get("/api/models/wan-2.5-i2v", params={"duration": 2, "resolution": "480p"}).json()
    assert shortest["price"]["estimate_usd"] == pytest.approx(0.25), "priced as the 5 s clip it would make"
    gpu = client.get("/api/models/wan-2.2-i2v-comfyui", params={"gpu_usd_per_hour": 0.42, "gpu_seconds": 90}).json()
    assert gpu["price"]["estimate_usd"] == pytest.approx(0.0105) and "$/hour" in gpu["price"]["text"]
    assert {m["kind"] for m in client.get("/api/models", params={"kind": "t2i"}).json()} == {"t2i"}
    assert "veo-3.1-t2v" in {m["id"] for m in client.get("/api/models", params={"kind": "t2v"}).json()}
    veo = client.get("/api/models/veo-3.1-i2v", params={"duration": 8, "audio": True}).json()
    assert veo["price"]["estimate_usd"] == pytest.approx(3.2) and veo["price"]["source"], "audio on: $0.40/s"
    assert veo["inputs"]["audio"] is True and veo["price"]["confirmed"] is False
    unavailable = [m for m in models.values() if not m["available"]]
    assert unavailable and all(m["missing"] for m in unavailable)
    assert local["unchecked"] == []


def test_a_gpu_model_with_an_endpoint_says_its_files_are_not_checked(client: httpx.Client, gpu_block: str) -> None:
    """The REST API cannot see the GPU's model files: "available" comes with what was not checked, never alone."""
    save_gpu(provider="local", comfyui_url="http://127.0.0.1:9")
    gpu = client.get("/api/models/wan-2.2-i2v-comfyui").json()
    assert gpu["available"] is True and gpu["missing"] == [] and gpu["unchecked"], gpu


def test_models_bad_input(client: httpx.Client) -> None:
    field, message = error_of(client.get("/api/models/no-such-model"), 404)
    assert field == "model_id" and "unknown model 'no-such-model'" in message and "local-kenburns" in message
    field, _ = error_of(client.get("/api/models", params={"duration": "long"}), 422)
    assert field == "duration"
    field, _ = error_of(client.get("/api/models", params={"kind": "video"}), 422)
    assert field == "kind"


# --- bad input for runs ----------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "field", "text"), [
    ({**LOCAL, "model": "sora-9", "image": "https://example.com/a.png"}, "model", "unknown video model 'sora-9'"),
    ({**LOCAL, "duration": "five", "image": "https://example.com/a.png"}, "duration", "valid number"),
    ({**LOCAL, "seed": -1, "image": "https://example.com/a.png"}, "seed", "greater than or equal to 0"),
    ({**LOCAL, "seed": "7", "image": "https://example.com/a.png"}, "seed", "valid integer"),
    ({**LOCAL, "fps": 500, "image": "https://example.com/a.png"}, "fps", "out of range"),
    ({**LOCAL, "resolution": "huge", "image": "https://example.com/a.png"}, "resolution", "not a resolution"),
    ({**LOCAL, "colour": "red", "image": "https://example.com/a.png"}, "colour", "Extra inputs"),
    ({**LOCAL}, "image", "an input is needed"),
    ({**LOCAL, "image": "/etc/passwd"}, "image", "file paths on the server are not accepted"),
    ({**LOCAL, "image": "upload:" + "0" * 64}, "image", "no upload with id"),
    ({**LOCAL, "image": "ftp://example.com/a.png"}, "image", "http(s) URL"),
    ({**LOCAL, "image": 42}, "image", "valid string"),
    ({**LOCAL, "image": "https://example.com/a.png", "image_prompt": "a cat"}, "image", "not both"),
    ({**LOCAL, "image": "https://example.com/a.png", "force": "yes"}, "force", "valid boolean"),
    ({**LOCAL, "image": "https://example.com/a.png", "pipeline_id": "nope"}, "pipeline_id", "no pipeline"),
    ({**LOCAL, "image": "https://example.com/a.png", "end_image": "https://example.com/b.png"}, "end_image",
     "takes no end image; models that take one: "),
    ({**LOCAL, "image": "https://example.com/a.png", "end_image": "/etc/passwd"}, "end_image",
     "file paths on the server are not accepted"),
    ({**LOCAL, "image": "https://example.com/a.png", "audio": True}, "audio", "cannot add audio"),
])
def test_create_run_bad_input(client: httpx.Client, body: dict[str, Any], field: str, text: str) -> None:
    before = repo.list_runs(limit=1)[1]
    status = 404 if field == "pipeline_id" else 422
    got_field, message = error_of(client.post("/api/runs", json=body), status)
    assert got_field == field and text in message, message
    assert repo.list_runs(limit=1)[1] == before


def test_create_run_unavailable_model_names_what_is_missing(client: httpx.Client) -> None:
    body = {"model": "wan-2.5-i2v", "image": uploaded(client, 1), "prompt": "waves", "duration": 5.0}
    response = client.post("/api/runs", json=body)
    field, message = error_of(response, 409)
    assert field == "model" and "not available" in message and response.json()["missing"]


def test_create_run_malformed_and_oversized_bodies(client: httpx.Client) -> None:
    field, _ = error_of(client.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"}),
                        422)
    assert field is not None
    error_of(client.post("/api/runs", json=[1, 2]), 422)
    _, message = error_of(client.post("/api/runs", json={"prompt": "x" * (2 * 1024 * 1024)}), 413)
    assert "over 1048576 bytes" in message
    chunked = iter([b'{"prompt": "', b"x" * (600 * 1024), b"x" * (600 * 1024), b'"}'])  # no Content-Length
    _, message = error_of(client.post("/api/runs", content=chunked, headers={"content-type": "application/json"}),
                          413)
    assert "over 1048576 bytes" in message


def test_unknown_route_and_method_are_json(client: httpx.Client) -> None:
    error_of(client.get("/api/nothing-here"), 404)
    not_allowed = client.delete("/api/runs")
    error_of(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, POST"
    field, message = error_of(client.get("/api/runs", params={"limt": 5}), 422)
    allowed = "as_of, backend, batch_id, kind, limit, model, offset, pipeline_id, q, since, sort, status, until"
    assert field == "limt" and f"allowed: {allowed}" in message
    field, message = error_of(client.get("/api/runs?batch_id=a&batch_id=b"), 422)
    assert field == "batch_id" and "given 2 times" in message
    estimate_get = client.get("/api/pipelines/estimate")
    error_of(estimate_get, 405)
    assert estimate_get.headers["allow"] == "POST"
    field, _ = error_of(client.get("/api/runs/does-not-exist"), 404)
    assert field == "run_id"
    field, _ = error_of(client.get("/api/runs", params={"status": "lost"}), 422)
    assert field == "status"
    field, _ = error_of(client.get("/api/runs", params={"limit": 0}), 422)
    assert field == "limit"


# --- uploads ---------------------------------------------------------------------------------------

def test_upload_is_checked_stored_and_served(client: httpx.Client, home: Path) -> None:
    data = png_bytes(shade(3), UPLOAD_SIZE)
    response = upload(client, data)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["image"] == f"upload:{body['upload_id']}" and (body["width"], body["height"]) == (200, 120)
    assert body["content_type"] == "image/png" and body["bytes"] == len(data)
    stored = client.get(body["url"])
    assert stored.status_code == 200 and stored.content == data and stored.headers["content-type"] == "image/png"
    assert (home / "storage" / body["url"].removeprefix("/api/media/")).read_bytes() == data


def test_upload_bad_input(client: httpx.Client, env: SetEnv) -> None:
    field, message = error_of(upload(client, b"just some text, not an image", "notes.txt", "text/plain"), 415)
    assert field == "file" and "not an image in a format reelflow reads" in message
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, "GIF")
    field, message = error_of(upload(client, gif.getvalue(), "a.gif", "image/gif"), 415)
    assert field == "file" and "GIF" in message and "PNG" in message
    field, _ = error_of(client.post("/api/uploads", data={"other": "x"}), 422)
    assert field == "file"
    field, _ = error_of(upload(client, b""), 422)
    assert field == "file"
    field, message = error_of(upload(client, pixel_bomb()), 413)
    assert field == "file" and "too many pixels" in message
    env(REELFLOW_MAX_INPUT_BYTES="4096")
    field, message = error_of(upload(client, png_bytes(size=(400, 400)) + b"\0" * 5000), 413)
    assert field == "file" and "over" in message
    huge = b"\0" * (4096 + 70 * 1024)
    field, _ = error_of(client.post("/api/uploads", files={"file": ("x.png", huge, "image/png")}), 413)
    assert field == "file"


def test_image_url_with_too_many_pixels_is_refused(client: httpx.Client, tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(pixel_bomb())
    with counting_server(tmp_path) as (base, seen):
        field, message = error_of(client.post("/api/runs", json={**LOCAL, "image": f"{base}/bomb.png"}), 422)
    assert field == "image" and "too many pixels" in message and seen == ["/bomb.png"]


def test_media_refuses_anything_but_stored_keys(client: httpx.Client) -> None:
    for key in ("../reelflow.db", "videos/00/" + "0" * 64 + ".mp4", "images/xx/abc.png", "%2e%2e/%2e%2e/etc/passwd",
                "runs/../reelflow.db", "runs/r1/../../reelflow.db", "runs/r1/video.mp4"):
        error_of(client.get(f"/api/media/{key}"), 404)


def test_media_serves_an_output_stored_under_its_run_key(client: httpx.Client, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0\0\0\x18ftypmp42" + bytes(range(256)) * 8)
    stored = get_storage("local").put_stream([clip.read_bytes()], "video/mp4", run_key=RunKey("r-media-test", "video"))
    assert stored.key == "runs/r-media-test/video.mp4"
    served = client.get(f"/api/media/{stored.key}")
    assert served.status_code == 200 and served.content == clip.read_bytes()
    assert served.headers["content-type"] == "video/mp4"


# --- SSRF ------------------------------------------------------------------------------------------

def test_private_image_urls_refused_unless_allowed(client: httpx.Client, env: SetEnv, tmp_path: Path) -> None:
    make_image(tmp_path / "in.png", (96, 64))
    with counting_server(tmp_path) as (base, seen):
        body = {**LOCAL, "image": f"{base}/in.png", "seed": 11}
        env(REELFLOW_ALLOW_PRIVATE_URLS="false")
        for url in (f"{base}/in.png", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.png",
                    "http://[::1]:9/a.png", "http://localhost:9/a.png"):
            field, message = error_of(client.post("/api/runs", json={**body, "image": url}), 422)
            assert field == "image" and "non-public address" in message, message
        assert seen == []
        env(REELFLOW_ALLOW_PRIVATE_URLS="true")
        response = client.post("/api/runs", json=body)
        assert response.status_code == 201, response.text
        assert seen == ["/in.png"]
        assert follow_run(client, response.json()["run_id"])[-1]["message"] == "completed"


HELD_DOWNLOADS = 3  # more than the turns POST /api/runs takes for runs of uploaded images


def test_image_urls_slow_to_answer_do_not_hold_up_runs_of_uploaded_images(client: httpx.Client,
                                                                           env: SetEnv) -> None:
    image = png_bytes(shade(31), UPLOAD_SIZE)
    release = threading.Event()
    asked: list[str] = []

    class Held(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            release.wait(120)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    env(REELFLOW_ALLOW_PRIVATE_URLS="true")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Held)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with ThreadPoolExecutor(HELD_DOWNLOADS) as pool:
            held = [pool.submit(client.post, "/api/runs", json={**LOCAL, "image": f"{base}/{n}.png", "seed": 40 + n})
                    for n in range(HELD_DOWNLOADS)]
            wait_until(lambda: len(asked) == HELD_DOWNLOADS, what="every held run fetching its image at once")
            quick = client.post("/api/runs", json={**LOCAL, "image": uploaded(client, 32), "seed": 44})
            assert quick.status_code == 201, quick.text
            assert not any(future.done() for future in held)
            release.set()
            assert [future.result(timeout=120).status_code for future in held] == [201] * HELD_DOWNLOADS
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_private_gpu_urls_refused_unless_allowed_or_local(client: httpx.Client, env: SetEnv,
                                                          gpu_block: str) -> None:
    env(REELFLOW_ALLOW_PRIVATE_URLS="false")
    body = {"gpu_provider": "vastai", "comfyui_url": "http://127.0.0.1:9"}
    field, message = error_of(client.put("/api/gpu/config", json=body), 422)
    assert field == "comfyui_url" and "non-public address" in message
    field, message = error_of(client.put("/api/gpu/config", json={"swarmui_url": "http://10.1.2.3/"}), 422)
    assert field == "swarmui_url" and "non-public address" in message
    field, message = error_of(client.put("/api/gpu/config", json={**body, "gpu_provider": "local"}), 422)
    assert field == "comfyui_url" and "did not answer" in message


# --- auth ------------------------------------------------------------------------------------------

def test_an_explicit_token_guards_every_endpoint(api: Served, env: SetEnv) -> None:
    file_token = api.headers  # the token file's token is not the one set explicitly
    env(REELFLOW_API_TOKEN="s3cret-token")
    calls = [("POST", "/api/runs", {"json": LOCAL}), ("POST", "/api/runs/x/cancel", {}),
             ("POST", "/api/runs/x/retry", {}), ("POST", "/api/pipelines", {"json": {"name": "a", "spec": {}}}),
             ("PUT", "/api/pipelines/x", {"json": {}}), ("DELETE", "/api/pipelines/x", {}),
             ("POST", "/api/uploads", {"files": {"file": ("a.png", png_bytes(), "image/png")}}),
             ("PUT", "/api/gpu/config", {"json": {}}), ("POST", "/api/vastai/instances/1/start", {}),
             ("POST", "/api/vastai/instances/1/stop", {}), ("POST", "/api/vastai/generate-video", {"json": {}}),
             ("POST", "/api/swarm/generate-video", {"json": {}}), ("GET", "/api/runs", {}), ("GET", "/api/models", {}),
             ("GET", "/api/pipelines", {}), ("GET", "/api/gpu/config", {}), ("GET", "/api/vastai/instances", {})]
    with httpx.Client(base_url=api.url, timeout=60) as anon:
        for method, path, kwargs in calls:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0LXRva2Vu"},
                            file_token):
                response = anon.request(method, path, headers=headers, **kwargs)
                field, _ = error_of(response, 401)
                assert field == "authorization" and response.headers["www-authenticate"] == "Bearer", (method, path)
        good = {"Authorization": "Bearer s3cret-token"}
        assert anon.post("/api/runs", json={**LOCAL, "model": "nope"}, headers=good).status_code == 422
        assert upload(anon, png_bytes(shade(9)), headers=good).status_code == 201
        for path in ("/api/runs", "/api/models", "/api/pipelines"):
            assert anon.get(path, headers=good).status_code == 200, path
        assert anon.get("/api/health").json()["auth_required"] is True


# --- runs end to end --------------------------------------------------------------------------------

def test_run_renders_streams_and_is_reused(client: httpx.Client) -> None:
    body = {**LOCAL, "image": uploaded(client, 20), "seed": 3}
    created = client.post("/api/runs", json=body)
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] in ("queued", "running") and run["cached"] is False
    assert run["spec"]["image"] == body["image"] and run["input_url"].startswith("/api/media/images/")

    events = follow_run(client, run["run_id"])
    statuses = [e["message"] for e in events if e["kind"] == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "completed" and "running" in statuses
    progress = [e["progress"] for e in events if e["kind"] == "progress"]
    assert progress and progress == sorted(progress) and progress[-1] == 1.0
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    done = client.get(f"/api/runs/{run['run_id']}").json()
    assert done["status"] == "completed" and done["progress"] == 1.0 and done["cost_usd"] == 0.0
    assert done["video_url"].startswith("/api/media/videos/") and done["poster_url"]
    assert all("path" not in o for o in done["outputs"]) and done["prefect_url"].endswith(
        f"/runs/flow-run/{done['prefect_flow_run_id']}")
    video = client.get(done["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    part = client.get(done["video_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100

    again = client.post("/api/runs", json=body)
    assert again.status_code == 200 and again.json()["cached"] is True
    assert again.json()["run_id"] == run["run_id"]
    forced = client.post("/api/runs", json={**body, "force": True})
    assert forced.status_code == 201 and forced.json()["run_id"] != run["run_id"]
    assert follow_run(client, forced.json()["run_id"])[-1]["message"] == "completed"


def test_list_wide_stream_sees_new_runs(client: httpx.Client) -> None:
    image = uploaded(client, 21)
    with client.stream("GET", "/api/events") as stream:
        assert stream.status_code == 200
        run_id = client.post("/api/runs", json={**LOCAL, "image": image, "seed": 4}).json()["run_id"]
        seen: list[str] = []
        for message in sse_messages(stream):
            event = message.json()
            assert event["run_id"] == run_id, "only events newer than the connection are sent"
            seen.append(event["message"])
            if event["kind"] == "status" and event["message"] in ("completed", "failed"):
                break
    assert seen[0] == "queued" and seen[-1] == "completed"


def test_events_resume_after_last_event_id(client: httpx.Client) -> None:
    run_id = client.post("/api/runs", json={**LOCAL, "image": uploaded(client, 22), "seed": 5}).json()["run_id"]
    events = follow_run(client, run_id)
    middle = events[len(events) // 2]["id"]
    with client.stream("GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": str(middle)}) as stream:
        rest = [m.json()["id"] for m in sse_messages(stream) if m.event != "end"]
    assert rest == [e["id"] for e in events if e["id"] > middle]
    error_of(client.get("/api/runs/nope/events"), 404)


def test_list_runs_pages_and_filters(client: httpx.Client) -> None:
    run_id = client.post("/api/runs", json={**LOCAL, "image": uploaded(client, 23), "seed": 6}).json()["run_id"]
    follow_run(client, run_id)
    page = client.get("/api/runs", params={"limit": 2}).json()
    assert page["limit"] == 2 and len(page["runs"]) == 2 and page["total"] >= 2
    created = [r["created_at"] for r in page["runs"]]
    assert created == sorted(created, reverse=True)
    second = client.get("/api/runs", params={"limit": 2, "offset": 1}).json()
    assert second["runs"][0]["run_id"] == page["runs"][1]["run_id"]
    completed = client.get("/api/runs", params={"status": "completed", "model": "local-kenburns"}).json()
    assert run_id in {r["run_id"] for r in completed["runs"]}
    assert all(r["status"] == "completed" for r in completed["runs"])
    assert client.get("/api/runs", params={"model": "veo-3.1-i2v"}).json() == {
        "total": 0, "limit": 20, "offset": 0, "runs": [], "as_of": ANY, "next_offset": None}


def test_cancel_stops_the_render_and_retry_starts_afresh(client: httpx.Client, api: Served) -> None:
    body = {**LOCAL, "image": uploaded(client, 24), "duration": 30.0, "fps": 60, "resolution": "1920x1080"}
    run_id = client.post("/api/runs", json=body).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as stream:
        for message in sse_messages(stream):
            if message.json()["message"].startswith("i2v_local started"):  # the render is under way
                break
    cancelled = client.post(f"/api/runs/{run_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    api.launcher.wait(run_id, timeout=60)
    run = repo.get_run(run_id)
    assert run.status == "cancelled" and run.video is None
    assert [(s.name, s.status) for s in run.steps] == [("i2v_local", "cancelled")]
    assert follow_run(client, run_id)[-1]["message"].startswith("cancelled")
    field, message = error_of(client.post(f"/api/runs/{run_id}/cancel"), 409)
    assert field == "run_id" and "already cancelled" in message

    retried = client.post(f"/api/runs/{run_id}/retry")
    assert retried.status_code == 200 and retried.json()["run_id"] != run_id
    new_id = retried.json()["run_id"]
    assert client.post(f"/api/runs/{new_id}/cancel").json()["status"] == "cancelled"
    api.launcher.wait(new_id, timeout=60)
    error_of(client.post("/api/runs/nope/retry"), 404)


def test_retry_only_failed_or_cancelled(client: httpx.Client) -> None:
    run_id = client.post("/api/runs", json={**LOCAL, "image": uploaded(client, 25), "seed": 8}).json()["run_id"]
    follow_run(client, run_id)
    field, message = error_of(client.post(f"/api/runs/{run_id}/retry"), 409)
    assert field == "run_id" and "only failed or cancelled" in message


def test_retry_failed_run_runs_again_under_its_id(client: httpx.Client, api: Served) -> None:
    image = uploaded(client, 26)
    run_id = prepare_run({**LOCAL, "image": resolve_image(image), "seed": 9}).run.run_id  # recorded, not started
    repo.mark_run(run_id, "failed", error="provider fell over")
    assert client.get(f"/api/runs/{run_id}").json()["error"] == "provider fell over"
    retried = client.post(f"/api/runs/{run_id}/retry")
    assert retried.status_code == 200 and retried.json()["run_id"] == run_id
    api.launcher.wait(run_id, timeout=120)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "completed"


def test_auto_dispatch_renders_here_without_a_worker(client: httpx.Client) -> None:
    image = uploaded(client, 27)
    with serve_api(via="auto") as auto, httpx.Client(base_url=auto.url, timeout=60, headers=auto.headers) as other:
        run = other.post("/api/runs", json={**LOCAL, "image": image, "seed": 12})
        assert run.status_code == 201, run.text
        assert follow_run(other, run.json()["run_id"])[-1]["message"] == "completed"


# --- pipelines -------------------------------------------------------------------------------------

def test_pipelines_crud_and_reuse(client: httpx.Client) -> None:
    spec = {"model": "local-kenburns", "prompt": "slow zoom", "duration": 1.0, "fps": 8, "resolution": "128x96"}
    created = client.post("/api/pipelines", json={"name": "tiny zoom", "spec": spec})
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert pipeline["spec"] == spec
    field, message = error_of(client.post("/api/pipelines", json={"name": "tiny zoom", "spec": spec}), 422)
    assert field == "name" and "already exists" in message
    listed = client.get("/api/pipelines").json()
    assert pipeline["pipeline_id"] in {p["pipeline_id"] for p in listed["pipelines"]}

    pid = pipeline["pipeline_id"]
    renamed = client.put(f"/api/pipelines/{pid}", json={"name": "tiny zoom 2", "spec": {**spec, "seed": 4}})
    assert renamed.status_code == 200 and renamed.json()["name"] == "tiny zoom 2"
    assert client.get(f"/api/pipelines/{pid}").json()["spec"]["seed"] == 4

    run = client.post("/api/runs", json={"pipeline_id": pid, "image": uploaded(client, 30)})
    assert run.status_code == 201, run.text
    assert run.json()["spec"]["resolution"] == "128x96" and run.json()["spec"]["seed"] == 4
    follow_run(client, run.json()["run_id"])
    done = repo.get_run(run.json()["run_id"])
    assert done.status == "completed"
    facts = probe_video(Path(done.video.path))
    assert (facts.width, facts.height, facts.frames) == (128, 96, 8)
    override = client.post("/api/runs", json={"pipeline_id": pid, "image": uploaded(client, 30), "fps": 500})
    assert error_of(override, 422)[0] == "fps"

    assert client.delete(f"/api/pipelines/{pid}").status_code == 204
    error_of(client.get(f"/api/pipelines/{pid}"), 404)
    error_of(client.delete(f"/api/pipelines/{pid}"), 404)


@pytest.mark.parametrize(("body", "field", "text"), [
    ({"name": "p", "spec": {"model": "nope"}}, "model", "unknown video model"),
    ({"name": "p", "spec": {"model": "local-kenburns", "duration": "long"}}, "spec.duration", "valid number"),
    ({"name": "p", "spec": {"model": "local-kenburns", "duration": 99.0}}, "duration", "out of range"),
    ({"name": "p", "spec": {"model": "local-kenburns", "image": "/etc/hosts"}}, "image", "not accepted"),
    ({"name": "  ", "spec": {"model": "local-kenburns"}}, "name", "must not be empty"),
    ({"name": "p"}, "definition", "is required: a pipeline definition"),
    ({"name": "p", "spec": {}}, "model", "Field required"),
])
def test_pipeline_bad_input(client: httpx.Client, body: dict[str, Any], field: str, text: str) -> None:
    got, message = error_of(client.post("/api/pipelines", json=body), 422)
    assert got == field and text in message, (got, message)


# --- GPU settings ----------------------------------------------------------------------------------

def test_gpu_config_defaults_and_bad_values(client: httpx.Client, gpu_block: str) -> None:
    config = client.get("/api/gpu/config").json()
    assert config["saved"] is False and config["gpu_provider"] == "none" and config["comfyui_url"] is None
    assert config["block_name"] == gpu_block
    for body, field, text in [({"comfyui_url": "ftp://host/x"}, "comfyui_url", "not an http(s) URL"),
                              ({"swarmui_url": "not a url"}, "swarmui_url", "not an http(s) URL"),
                              ({"gpu_provider": "runpod"}, "gpu_provider", "'none', 'local' or 'vastai'"),
                              ({"vastai_instance_id": "12"}, "vastai_instance_id", "valid integer"),
                              ({"gpu_provider": "local", "provider": "vastai"}, "gpu_provider", "disagree"),
                              ({"tunnel_auth_cookie": "novalue"}, "tunnel_auth_cookie", "name=value"),
                              ({"comfyui_url": "http://127.0.0.1:9"}, "comfyui_url", "did not answer")]:
        field_got, message = error_of(client.put("/api/gpu/config", json=body), 422)
        assert field_got == field and text in message, (body, message)
    assert client.get("/api/gpu/config").json()["saved"] is False


def test_gpu_config_checks_saves_and_masks(client: httpx.Client, gpu_block: str) -> None:
    with ComfyEmulator() as comfy, VastEmulator() as vast:
        GpuEndpoint(vastai_api_url=vast.url).save(gpu_block, overwrite=True)  # as `reelflow gpu set` does
        body = {"gpu_provider": "vastai", "comfyui_url": comfy.url + "/", "vastai_instance_id": DEFAULT_INSTANCE_ID,
                **SECRETS}
        response = client.put("/api/gpu/config", json=body)
        assert response.status_code == 200, response.text
        saved = response.json()
        assert "ComfyUI 0.3.64-emulated" in saved["checked"]["comfyui_url"]
        shown = client.get("/api/gpu/config")
        for text in (response.text, shown.text):
            assert not any(secret in text for secret in SECRETS.values() if secret != "CF-Access-Client-Secret")
        config = shown.json()
        assert config["saved"] is True and config["gpu_provider"] == config["provider"] == "vastai"
        assert config["comfyui_url"] == comfy.url and config["vastai_instance_id"] == DEFAULT_INSTANCE_ID
        assert config["vastai_api_key"] == MASK and config["portal_token"] == MASK

        kept = client.put("/api/gpu/config", json={"vastai_api_key": MASK, "idle_stop_minutes": 5})
        assert kept.status_code == 200, kept.text
        block = GpuEndpoint.load(gpu_block)
        assert block.vastai_api_key.get_secret_value() == API_KEY and block.idle_stop_minutes == 5
        assert block.comfyui_url == comfy.url

        cleared = client.put("/api/gpu/config", json={"portal_token": None, "comfyui_url": None})
        assert cleared.json()["portal_token"] is None and cleared.json()["comfyui_url"] is None
        assert GpuEndpoint.load(gpu_block).portal_token is None

        unverified = client.put("/api/gpu/config", params={"verify": "false"}, json={"comfyui_url": "http://127.0.0.1:9"})
        assert unverified.status_code == 200 and unverified.json()["checked"] == {}


def test_vastai_instances_list_start_stop(client: httpx.Client, gpu_block: str) -> None:
    field, message = error_of(client.get("/api/vastai/instances"), 409)
    assert field == "vastai_api_key" and "PUT /api/gpu/config" in message
    with VastEmulator() as vast:
        vast.add_instance(777, running=False, gpu_name="RTX 3090", dph_total=0.21)
        GpuEndpoint(vastai_api_url=vast.url).save(gpu_block, overwrite=True)  # as `reelflow gpu set` does
        config = {"gpu_provider": "vastai", "vastai_api_key": API_KEY, "vastai_instance_id": DEFAULT_INSTANCE_ID}
        assert client.put("/api/gpu/config", json=config).status_code == 200
        listed = client.get("/api/vastai/instances").json()
        assert listed["selected_id"] == DEFAULT_INSTANCE_ID
        by_id = {i["id"]: i for i in listed["instances"]}
        assert by_id[DEFAULT_INSTANCE_ID]["selected"] is True and by_id[DEFAULT_INSTANCE_ID]["dph_total"] == 0.42
        assert by_id[777]["selected"] is False and by_id[777]["gpu_name"] == "RTX 3090"
        assert by_id[777]["actual_status"] != "running"
        assert API_KEY not in str(listed)

        stopped = client.post(f"/api/vastai/instances/{DEFAULT_INSTANCE_ID}/stop")
        assert stopped.status_code == 200 and stopped.json()["id"] == DEFAULT_INSTANCE_ID
        started = client.post("/api/vastai/instances/777/start")
        assert started.status_code == 200 and started.json()["id"] == 777
        assert vast.stats()["start_calls"] == 1 and vast.stats()["stop_calls"] == 1

        field, _ = error_of(client.post("/api/vastai/instances/999/start"), 404)
        assert field == "instance_id"
        error_of(client.post("/api/vastai/instances/0/start"), 422)
        assert client.put("/api/gpu/config", json={"vastai_api_key": "wrong-key"}).status_code == 200
        field, message = error_of(client.get("/api/vastai/instances"), 409)
        assert field == "vastai_api_key" and "rejected" in message and "wrong-key" not in message


# --- the original system's endpoints -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/vastai/generate-video", "/api/swarm/generate-video"])
def test_compat_generate_video(client: httpx.Client, gpu_block: str, path: str) -> None:
    image = uploaded(client, 40)
    field, message = error_of(client.post(path, json={"image": image}), 422)
    assert field == "prompt"
    field, _ = error_of(client.post(path, json={"image": image, "prompt": "x", "width": 640}), 422)
    assert field == "width"
    field, _ = error_of(client.post(path, json={"prompt": "x"}), 422)
    assert field == "image"
    field, _ = error_of(client.post(path, json={"image": image, "prompt": "x", "frames": 50}), 422)
    assert field == "frames"
    response = client.post(path, json={"image_url": image, "prompt": "a wave", "width": 832, "height": 480})
    field, message = error_of(response, 409)
    model = "wan-2.2-i2v-comfyui" if "vastai" in path else "wan-2.2-i2v-swarmui"
    assert field == "model" and model in message and response.json()["missing"]



@pytest.mark.parametrize(("path", "backend"), [("/api/vastai/generate-video", "comfyui"),
                                               ("/api/swarm/generate-video", "swarmui")])
def test_compat_generate_video_runs_on_the_gpu(client: httpx.Client, gpu_block: str, path: str, backend: str) -> None:
    emulator = ComfyEmulator(job_seconds=0.5) if backend == "comfyui" else SwarmEmulator()
    with emulator as gpu:
        saved = client.put("/api/gpu/config", json={"gpu_provider": "local", f"{backend}_url": gpu.url})
        assert saved.status_code == 200, saved.text
        assert saved.json()["checked"][f"{backend}_url"].lower().startswith(backend)
        model_id = f"wan-2.2-i2v-{backend}"
        model = client.get(f"/api/models/{model_id}").json()
        assert model["available"] is True and model["missing"] == []
        body = {"image": uploaded(client, 41), "prompt": "a wave rolls in", "width": 832, "height": 480, "seed": 3,
                "frames": 17, "fps": 16}
        created = client.post(path, json=body)
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["model"] == model_id and run["backend"] == backend and run["video_url"] is None
        events = follow_run(client, run["run_id"])
        assert events[-1]["message"] == "completed", events[-3:]
        done = client.get(f"/api/runs/{run['run_id']}").json()
        assert done["video_url"].startswith("/api/media/videos/")
        assert client.get(done["video_url"]).headers["content-type"] == "video/mp4"
