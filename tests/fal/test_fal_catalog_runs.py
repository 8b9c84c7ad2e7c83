"""The catalog's new paths as a user runs them: the ``reelflow`` CLI as a subprocess -> Prefect flow -> fal tasks
-> HTTPS fal emulator (which checks each body against the endpoint's stored OpenAPI schema) -> store.

A text-to-video run (no start image), a first-last-frame run, an end image refused on a model that cannot take
one, a fal endpoint registered with ``reelflow models add`` run, listed and removed, and ``run_edit_image``
(the pipeline's edit_image step) from a flow process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reelflow.runs.prepare import prepare_run
from tests.emulators.fal import FalEmulator
from tests.support.cli import REELFLOW, ROOT
from tests.support.fal_pipeline import Env, cli
from tests.support.files import make_image, sha256_file
from tests.support.store import store_rows


def _job(emu: FalEmulator) -> dict[str, Any]:
    jobs = list(emu.stats()["jobs"].values())
    assert len(jobs) == 1, jobs
    return jobs[0]


def _plain(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REELFLOW, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_text_to_video_run_sends_the_prompt_alone_and_prices_the_audio(emu: FalEmulator, env: Env) -> None:
    code, run = cli(env, "run", "--model", "veo-3.1-t2v", "--prompt", "a lighthouse at dusk, waves",
                    "--duration", "4", "--audio", "--seed", "11")

    assert code == 0 and run["status"] == "completed", run
    job = _job(emu)
    assert job["endpoint"] == "fal-ai/veo3.1"
    assert job["arguments"] == {"prompt": "a lighthouse at dusk, waves", "duration": "4s", "resolution": "720p",
                                "seed": 11, "generate_audio": True}
    assert run["cost_usd"] == pytest.approx(1.6), "4 s of Veo 3.1 with audio, $0.40/s"
    assert [s["name"] for s in run["steps"] if not s["name"].startswith("cache_r2")] == ["t2v_fal"]


def test_first_last_frame_run_sends_both_frames(emu: FalEmulator, env: Env, photo: Path, tmp_path: Path) -> None:
    last = make_image(tmp_path / "last.jpg", size=(480, 320), fmt="JPEG")
    code, run = cli(env, "run", "--model", "kling-2.5-turbo-pro-i2v", "--image", str(photo), "--end-image", str(last),
                    "--prompt", "the door opens")

    assert code == 0 and run["status"] == "completed", run
    job = _job(emu)
    assert job["endpoint"] == "fal-ai/kling-video/v2.5-turbo/pro/image-to-video"
    arguments = job["arguments"]
    assert set(arguments) == {"prompt", "image_url", "tail_image_url", "duration"}, arguments
    assert arguments["image_url"].startswith("data:image/png")
    assert arguments["tail_image_url"].startswith("data:image/jpeg"), "the end image goes in the end-frame field"
    assert run["cost_usd"] == pytest.approx(0.35)
    stored = {o["role"]: o for o in run["outputs"]}
    assert sha256_file(Path(stored["end_image"]["path"])) == sha256_file(last), "the end image is stored like the input"


def test_an_end_image_is_refused_on_a_model_that_takes_none(emu: FalEmulator, env: Env, photo: Path) -> None:
    code, refused = cli(env, "run", "--model", "wan-2.5-i2v", "--image", str(photo), "--end-image", str(photo),
                        "--prompt", "p")

    assert code == 2, refused
    assert "end_image" in refused["error"] and "kling-2.5-turbo-pro-i2v" in refused["error"], refused
    assert emu.stats()["submits"]["total"] == 0


def test_a_registered_fal_endpoint_round_trip(emu: FalEmulator, env: Env, photo: Path) -> None:
    endpoint = "fal-ai/minimax/hailuo-02/standard/image-to-video"
    added = _plain(env, "models", "add", "my-hailuo", "--fal-endpoint", endpoint, "--kind", "i2v",
                   "--image-field", "image_url", "--end-image-field", "end_image_url", "--duration-field", "duration",
                   "--durations", "6,10", "--resolution-field", "resolution", "--resolutions", "768P,512P",
                   "--price-per-second", "0.045")
    try:
        assert added.returncode == 0, added.stderr
        code, listed = cli(env, "models")
        mine = next(m for m in listed if m["id"] == "my-hailuo")
        assert (mine["backend"], mine["endpoint"], mine["price_text"]) == ("fal", endpoint, "$0.045 per second")

        code, run = cli(env, "run", "--model", "my-hailuo", "--image", str(photo), "--prompt", "rain starts",
                        "--duration", "10")
        assert code == 0 and run["status"] == "completed", run
        arguments = _job(emu)["arguments"]
        assert {k: arguments[k] for k in ("duration", "resolution", "prompt")} == {
            "duration": "10", "resolution": "768P", "prompt": "rain starts"}
        assert run["cost_usd"] == pytest.approx(0.45)
    finally:
        removed = _plain(env, "models", "remove", "my-hailuo")
    assert removed.returncode == 0, removed.stderr
    code, listed = cli(env, "models")
    assert "my-hailuo" not in [m["id"] for m in listed]
    code, refused = cli(env, "run", "--model", "my-hailuo", "--image", str(photo), "--prompt", "p")
    assert code == 2 and "unknown video model 'my-hailuo'" in refused["error"], refused


def test_a_registered_model_without_a_price_reads_unknown(env: Env) -> None:
    added = _plain(env, "models", "add", "my-free-looking", "--fal-endpoint", "someone/app/image-to-video",
                   "--kind", "i2v")
    try:
        assert added.returncode == 0, added.stderr
        _, listed = cli(env, "models")
        mine = next(m for m in listed if m["id"] == "my-free-looking")
        assert mine["price_text"] == "price unknown" and mine["price"]["usd"] is None
    finally:
        _plain(env, "models", "remove", "my-free-looking")
    bad = _plain(env, "models", "add", "x", "--fal-endpoint", "not an endpoint", "--kind", "i2v")
    assert bad.returncode == 2 and "fal_endpoint" in bad.stderr, bad.stderr
    clash = _plain(env, "models", "add", "veo-2-i2v", "--fal-endpoint", "fal-ai/veo2/image-to-video", "--kind", "i2v")
    assert clash.returncode == 2 and "built-in" in clash.stderr, clash.stderr


@pytest.mark.parametrize(("model_id", "endpoint", "image_field"), [
    ("flux-kontext-pro", "fal-ai/flux-pro/kontext", "image_url"),
    ("nano-banana-edit", "fal-ai/nano-banana/edit", "image_urls"),
])
def test_edit_image_sends_the_image_and_the_instruction(emu: FalEmulator, env: Env, photo: Path, model_id: str,
                                                        endpoint: str, image_field: str) -> None:
    prepared = prepare_run({"model": "local-kenburns", "image": str(photo), "prompt": "p"}, force=True)
    done = subprocess.run([sys.executable, "-m", "tests.support.fal_edit", prepared.run.run_id, model_id, str(photo)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    output = json.loads(lines[-1].removeprefix("RESULT "))

    job = _job(emu)
    assert job["endpoint"] == endpoint and job["arguments"]["prompt"] == "make it dusk"
    sent = job["arguments"][image_field]
    assert (sent[0] if isinstance(sent, list) else sent).startswith("data:image/png")
    assert output["role"] == "image" and output["media"]["url"].startswith(emu.base_url)
    assert output["cost_usd"] == pytest.approx(0.039 if model_id == "nano-banana-edit" else 0.04)
    step = store_rows("SELECT status, cost_micro_usd FROM steps WHERE run_id = ? AND name = 'edit_image'",
                      prepared.run.run_id)
    assert step == [("completed", round(output["cost_usd"] * 1_000_000))]
