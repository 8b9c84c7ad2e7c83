"""The pipeline with outputs in an S3-compatible bucket (moto's server on loopback) behind a CDN URL: a local
render (a file: content key) and a fal video (a URL: the run's key)."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.emulators.fal import FalEmulator
from tests.support.cli import run_cli, run_cli_json
from tests.support.fal_pipeline import Env, cli, wan_args
from tests.support.files import make_image
from tests.support.s3_server import moto_server, s3_client
from tests.support.web_api import serve_api

BUCKET = "reelflow-test"
CDN = "https://cdn.example.test"
SECRET = "moto-secret-value-never-printed"


@pytest.fixture()
def bucket() -> Iterator[tuple[str, object]]:
    with moto_server() as endpoint:
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        try:
            yield endpoint, client
        finally:
            assert run_cli("storage", "local").returncode == 0


def use_bucket(endpoint: str) -> subprocess.CompletedProcess[str]:
    saved = run_cli("storage", "s3", "--endpoint-url", endpoint, "--bucket", BUCKET, "--access-key-id", "AKTEST",
                    "--secret-access-key", SECRET, "--public-url", CDN)
    assert saved.returncode == 0, saved.stderr
    return saved


def test_outputs_land_in_the_bucket_with_cdn_urls(bucket: tuple[str, object], tmp_path: Path) -> None:
    endpoint, client = bucket
    saved = use_bucket(endpoint)
    shown = run_cli("storage", "show")
    assert BUCKET in shown.stdout and "********" in shown.stdout
    assert SECRET not in saved.stdout + saved.stderr + shown.stdout + shown.stderr

    image = make_image(tmp_path / "in.png", (160, 120))
    code, result = run_cli_json("run", "--model", "local-kenburns", "--image", str(image), "--frames", "6",
                                "--fps", "6", "--resolution", "128x96", "--seed", "6")
    assert code == 0, result["error"]
    by_role = {o["role"]: o for o in result["outputs"]}
    assert set(by_role) == {"video", "poster", "input"}
    video = by_role["video"]
    assert video["url"] == f"{CDN}/{video['key']}" and "path" not in video
    head = client.head_object(Bucket=BUCKET, Key=video["key"])  # type: ignore[attr-defined]
    assert head["ContentType"] == "video/mp4"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert head["ContentLength"] == video["bytes"]
    poster = client.head_object(Bucket=BUCKET, Key=by_role["poster"]["key"])  # type: ignore[attr-defined]
    assert poster["ContentType"] == "image/jpeg"
    assert by_role["input"]["key"].startswith("images/")

    code, again = run_cli_json("run", "--model", "local-kenburns", "--image", str(image), "--frames", "6",
                               "--fps", "6", "--resolution", "128x96", "--seed", "6")
    assert code == 0 and again["cached"] is True and again["run_id"] == result["run_id"]

    body = client.get_object(Bucket=BUCKET, Key=video["key"])["Body"].read()  # type: ignore[attr-defined]
    assert _zipped_videos(tmp_path, [result["run_id"]]) == [body], "the bulk zip reads the video from the bucket"


def _zipped_videos(tmp_path: Path, run_ids: list[str]) -> list[bytes]:
    """``GET /api/runs/download`` of the served API: the videos in the zip (the CDN URL is not reachable here, so
    they can only come from the bucket), and nothing listed as missing."""
    with serve_api() as api, httpx.Client(base_url=api.url, headers=api.headers, timeout=60) as http:
        response = http.get("/api/runs/download", params={"ids": ",".join(run_ids)})
    assert response.status_code == 200, response.text
    target = tmp_path / "runs.zip"
    target.write_bytes(response.content)
    with zipfile.ZipFile(target) as archive:
        assert "missing.txt" not in archive.namelist(), archive.read("missing.txt").decode()
        return [archive.read(name) for name in archive.namelist()]


def test_a_provider_url_lands_at_its_runs_key(bucket: tuple[str, object], emu: FalEmulator, env: Env,
                                              photo: Path) -> None:
    endpoint, client = bucket
    use_bucket(endpoint)
    code, result = cli(env, *wan_args(photo, "to the bucket", "--seed", "5"))
    assert code == 0 and result["status"] == "completed", result
    video = next(o for o in result["outputs"] if o["role"] == "video")
    assert video["key"] == f"runs/{result['run_id']}/video.mp4" and video["url"] == f"{CDN}/{video['key']}"
    head = client.head_object(Bucket=BUCKET, Key=video["key"])  # type: ignore[attr-defined]
    assert head["Metadata"] == {"run-id": result["run_id"]} and head["ContentType"] == "video/mp4"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    body = client.get_object(Bucket=BUCKET, Key=video["key"])["Body"].read()  # type: ignore[attr-defined]
    assert hashlib.sha256(body).hexdigest() == video["sha256"] and len(body) == video["bytes"]
    poster = next(o for o in result["outputs"] if o["role"] == "poster")
    assert client.head_object(Bucket=BUCKET, Key=poster["key"])["ContentType"] == "image/jpeg"  # type: ignore[attr-defined]
    assert emu.stats()["media_downloads"] == {"video.mp4": 1}, "the poster is made from the bucket's copy"

    code, forced = cli(env, *wan_args(photo, "to the bucket", "--seed", "5", "--force"))
    assert code == 0 and forced["run_id"] != result["run_id"], forced
    again = next(o for o in forced["outputs"] if o["role"] == "video")
    assert again["key"] == f"runs/{forced['run_id']}/video.mp4"
    for key in (video["key"], again["key"]):
        assert client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0  # type: ignore[attr-defined]
