"""Registered ComfyUI workflows of any kind as ``comfyui`` pipeline steps, against the ComfyUI emulator (real HTTP
and websocket): an image upscaler (image in, image out) and a frame interpolator (video in, video out), registered
with the README's commands and run through the CLI between local steps."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from reelflow.core.media import probe_video
from tests.emulators.comfyui import ComfyEmulator
from tests.support.cli import REELFLOW, ROOT, run_cli, run_cli_json
from tests.support.gpu import save_gpu
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value

pytestmark = pytest.mark.usefixtures("fast_polls")
KEYFRAME = (160, 96)
UPSCALER, INTERPOLATOR = "comfyui:upscale-2x", "comfyui:rife-2x"


def _readme_adds() -> list[list[str]]:
    """The README's `reelflow workflows add` commands for the upscaler and the interpolator."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    block = next(b for b in blocks if "upscale_2x_api.json" in b)
    lines = [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return [line for line in lines if line[:3] == ["reelflow", "workflows", "add"]]


@pytest.fixture(scope="module")
def media_workflows() -> Iterator[None]:
    adds = _readme_adds()
    assert [add[3] for add in adds] == ["upscale-2x", "rife-2x"]
    for add in adds:
        at = add.index("--file") + 1
        add[at] = str(ROOT / add[at])  # the README's paths are relative to the repository
        done = run_cli(*add[1:], "--replace")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "in, " in done.stdout
    yield
    for add in adds:
        run_cli("workflows", "remove", add[3])


def _definition() -> dict[str, Any]:
    return {
        "name": "upscale-animate-smooth",
        "inputs": {"idea": {"type": "text"}},
        "steps": [
            {"id": "keyframe", "kind": "generate_image", "model": "local-procedural-image", "prompt": "$inputs.idea",
             "params": {"resolution": f"{KEYFRAME[0]}x{KEYFRAME[1]}"}},
            {"id": "upscale", "kind": "comfyui", "model": UPSCALER, "image": "$keyframe.image"},
            {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$upscale.image",
             "prompt": "a slow push in", "params": {"duration": 1, "fps": 16, "resolution": "320x192"}},
            {"id": "smooth", "kind": "comfyui", "model": INTERPOLATOR, "video": "$clip.video"},
        ],
    }


def _write(tmp_path: Path, definition: dict[str, Any]) -> Path:
    file = tmp_path / f"{definition['name']}.yaml"
    file.write_text(yaml.safe_dump(definition))
    return file


def _outputs(result: dict[str, Any], step: str) -> dict[str, Any]:
    return next(s for s in result["steps"] if s["id"] == step)["items"][0]["outputs"]


@pytest.mark.usefixtures("media_workflows")
def test_upscaler_and_interpolator_steps_run_once_and_are_reused(fresh_comfy: ComfyEmulator, tmp_path: Path) -> None:
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    file = _write(tmp_path, _definition())
    code, result = run_cli_json("pipeline", "run", str(file), "--input", "idea=a lighthouse at dusk")
    assert code == 0 and result["status"] == "completed", result.get("error")

    upscaled = _outputs(result, "upscale")["image"]
    with Image.open(upscaled["path"]) as image:
        assert image.size == (2 * KEYFRAME[0], 2 * KEYFRAME[1])  # the emulator's ImageScaleBy, scale_by 2.0
    assert (upscaled["width"], upscaled["height"]) == (2 * KEYFRAME[0], 2 * KEYFRAME[1])
    clip = probe_video(Path(_outputs(result, "clip")["video"]["path"]))
    smooth_out = _outputs(result, "smooth")["video"]
    smooth = probe_video(Path(smooth_out["path"]))
    assert (clip.fps, clip.frames) == (16, 16)
    assert (smooth.fps, smooth.frames, smooth.width, smooth.height) == (32, 32, 320, 192)  # RIFE VFI multiplier 2
    assert (smooth_out["fps"], smooth_out["frames"]) == (32, 32)
    assert result["final_outputs"]["video"]["sha256"] == smooth_out["sha256"]

    stats = fresh_comfy.stats()
    assert sorted(Path(name).suffix for name in stats["uploaded"]) == [".mp4", ".png"]
    jobs = dict(store_rows("SELECT name, provider_job_id FROM steps WHERE run_id = ? AND name IN ('upscale', "
                           "'smooth')", result["run_id"]))
    assert sorted(stats["submits"]) == sorted(jobs.values())  # exactly one prompt queued per comfyui step
    upscale_graph = fresh_comfy.state.history[jobs["upscale"]]["prompt"][2]
    smooth_graph = fresh_comfy.state.history[jobs["smooth"]]["prompt"][2]
    assert upscale_graph["1"]["inputs"]["image"].endswith(".png")
    assert smooth_graph["1"]["inputs"]["file"].endswith(".mp4")
    assert smooth_graph["5"]["inputs"]["filename_prefix"] == f"reelflow/{jobs['smooth']}"

    code, again = run_cli_json("pipeline", "run", str(file), "--input", "idea=a lighthouse at dusk")
    assert code == 0 and again["cached"] is True and again["run_id"] == result["run_id"]
    assert fresh_comfy.stats()["submits"] == stats["submits"]

    extended = _definition()  # a new run of an edited definition: the unchanged steps are reused, not queued
    extended["steps"].append({"id": "film", "kind": "concat", "videos": ["$smooth.video", "$smooth.video"]})
    code, again = run_cli_json("pipeline", "run", str(_write(tmp_path, extended | {"name": "extended"})),
                               "--input", "idea=a lighthouse at dusk")
    assert code == 0 and again["status"] == "completed" and again["run_id"] != result["run_id"], again.get("error")
    assert fresh_comfy.stats()["submits"] == stats["submits"]  # no new prompt: both steps reused
    reused = {s["id"]: s["items"][0]["reused_from"] for s in again["steps"]}
    assert reused["upscale"] == {"run_id": result["run_id"], "step": "upscale"}
    assert reused["smooth"] == {"run_id": result["run_id"], "step": "smooth"}


@pytest.mark.usefixtures("media_workflows")
def test_a_killed_run_resumes_its_comfyui_step_by_prompt_id(fresh_comfy: ComfyEmulator, tmp_path: Path) -> None:
    fresh_comfy.configure(job_seconds=4.0)
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    file = _write(tmp_path, _definition() | {"name": "killed-upscale"})
    idea = f"a harbour at noon {uuid.uuid4().hex[:6]}"  # new step keys: nothing to reuse
    first = subprocess.Popen([*REELFLOW, "pipeline", "run", str(file), "--input", f"idea={idea}", "--json"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        running = wait_until(lambda: fresh_comfy.state.running, 120, "the upscale prompt to run on the GPU")
        (run_id,) = wait_until(lambda: [r[0] for r in store_rows(
            "SELECT run_id FROM steps WHERE name = 'upscale' AND provider_job_id = ?", running.prompt_id)], 30,
            "the prompt id stored on the step")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    assert fresh_comfy.state.running is not None, "killed while the prompt ran"

    code, resumed = run_cli_json("resume", run_id)
    assert code == 0 and resumed["status"] == "completed", resumed
    stats = fresh_comfy.stats()
    (smooth_job,) = [r[0] for r in store_rows("SELECT provider_job_id FROM steps WHERE run_id = ? AND name = "
                                               "'smooth'", run_id)]
    assert stats["submits"] == [running.prompt_id, smooth_job], "the upscale prompt was waited on, not queued again"
    assert sorted(Path(name).suffix for name in stats["uploaded"]) == [".mp4", ".png"]
    image = next(o for o in resumed["outputs"] if o["role"] == "image" and o["width"] == 2 * KEYFRAME[0])
    assert image["height"] == 2 * KEYFRAME[1]


@pytest.mark.usefixtures("media_workflows")
@pytest.mark.parametrize(("change", "field", "says"), [
    (lambda d: d["steps"][3].update(image="$upscale.image", video=None), "steps.smooth.image", "takes a video"),
    (lambda d: d["steps"][3].pop("video"), "steps.smooth.video", "is required"),
    (lambda d: d["steps"][1].update(image=None, video="$keyframe.image"), "steps.upscale.video", "takes an image"),
    (lambda d: d["steps"].append({"id": "again", "kind": "image_to_video", "model": "local-kenburns",
                                  "image": "$smooth.video"}), "steps.again.image", "takes an image"),
    (lambda d: d["steps"].append({"id": "still", "kind": "image_to_video", "model": "local-kenburns",
                                  "image": "$smooth.image"}), "steps.still.image", "has no output 'image'"),
    (lambda d: d["steps"][1].update(prompt="sharper"), "steps.upscale.prompt", "takes no prompt"),
    (lambda d: d["steps"][1].update(params={"fps": 24}), "steps.upscale.params.fps", "allowed: seed"),
    (lambda d: d["steps"].append({"id": "edit", "kind": "edit_image", "model": UPSCALER, "image": "$keyframe.image",
                                  "prompt": "x"}), "steps.edit.model", "comfyui"),
])
def test_a_workflow_fed_or_feeding_the_wrong_kind_exits_2_and_records_nothing(
        fresh_comfy: ComfyEmulator, tmp_path: Path, change: Any, field: str, says: str) -> None:
    definition = _definition()
    change(definition)
    definition["steps"] = [{k: v for k, v in s.items() if v is not None} for s in definition["steps"]]
    runs_before = store_value("SELECT COUNT(*) FROM runs")
    done = run_cli("pipeline", "run", str(_write(tmp_path, definition)), "--input", "idea=x", "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert field in done.stdout and says in done.stdout, done.stdout
    assert store_value("SELECT COUNT(*) FROM runs") == runs_before
    assert fresh_comfy.stats()["submits"] == [] and fresh_comfy.stats()["uploads"] == 0


@pytest.mark.parametrize("points", [["--image", "1.image", "--video", "1.image"], []])
def test_workflows_add_needs_exactly_one_of_image_and_video(points: list[str]) -> None:
    done = run_cli("workflows", "add", "half", "--file", str(ROOT / "examples/comfyui/upscale_2x_api.json"),
                   *points, "--output", "3")
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert "give exactly one of --image NODE.FIELD" in said and "--video NODE.FIELD" in said, said
    assert ("got both" if points else "got neither") in said
    assert "half" not in run_cli("workflows", "list").stdout


def test_workflows_add_needs_the_output_kind_of_an_unknown_save_node(tmp_path: Path) -> None:
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
             "2": {"class_type": "MySaver", "inputs": {"images": ["1", 0]}}}
    file = tmp_path / "custom.json"
    file.write_text(json.dumps(graph))
    done = run_cli("workflows", "add", "mine", "--file", str(file), "--image", "1.image", "--output", "2")
    assert done.returncode == 2 and "--output-kind image or --output-kind video" in " ".join(done.stderr.split())
    added = run_cli("workflows", "add", "mine", "--file", str(file), "--image", "1.image", "--output", "2",
                    "--output-kind", "image")
    try:
        assert added.returncode == 0 and "image in, image out" in added.stdout, added.stdout + added.stderr
    finally:
        run_cli("workflows", "remove", "mine")


def test_a_workflow_registered_by_an_earlier_build_is_still_image_to_video() -> None:
    from reelflow.core.catalog import load_catalog
    from reelflow.core.catalog.workflows import workflows_dir

    graph = json.loads((ROOT / "examples/comfyui/wan22_i2v_lightx2v_api.json").read_text(encoding="utf-8"))
    written = {"name": "earlier-wan", "description": "", "source": None, "registered_at": "2026-01-01T00:00:00+00:00",
               "template": {"name": "earlier-wan", "graph": graph, "output_node": "108", "size_multiple": 16,
                            "length_rule": None, "inject": {"image": ["97", "image"], "prompt": ["93", "text"],
                                                            "seed": ["86", "noise_seed"]}}}
    path = workflows_dir() / "earlier-wan.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(written), encoding="utf-8")
    try:
        entry = load_catalog().get("comfyui:earlier-wan")
        assert (entry.kind, entry.input_kind, entry.output_kind, entry.inputs.prompt, entry.inputs.seed) == (
            "i2v", "image", "video", "required", True)
    finally:
        path.unlink()
