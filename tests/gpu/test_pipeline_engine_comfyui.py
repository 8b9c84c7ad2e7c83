"""A registered ComfyUI workflow as a ``comfyui`` pipeline step, against the ComfyUI emulator (real HTTP and
websocket): the step's job is submitted once, recorded into the pipeline step, and its video feeds a concat."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reelflow.core.media import probe_video
from tests.emulators.comfyui import ComfyEmulator
from tests.support.cli import ROOT, run_cli, run_cli_json
from tests.support.gpu import save_gpu
from tests.support.store import store_rows

pytestmark = pytest.mark.usefixtures("fast_polls")
WORKFLOW = ROOT / "examples/comfyui/wan22_i2v_lightx2v_api.json"


def test_registered_workflow_as_a_pipeline_step(fresh_comfy: ComfyEmulator, image: Path, tmp_path: Path) -> None:
    added = run_cli("workflows", "add", "pipe-wan", "--file", str(WORKFLOW), "--image", "97.image", "--prompt",
                    "93.text", "--seed", "86.noise_seed", "--width", "98.width", "--height", "98.height",
                    "--length", "98.length", "--fps", "94.fps", "--output", "108", "--frames-rule", "4n+1",
                    "--replace")
    assert added.returncode == 0, added.stderr
    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    definition = {
        "name": "comfy-step",
        "inputs": {"photo": {"type": "image"}},
        "steps": [
            {"id": "wan", "kind": "comfyui", "model": "comfyui:pipe-wan", "image": "$inputs.photo",
             "prompt": "a slow pan over hills", "params": {"frames": 17, "fps": 16}},
            {"id": "joined", "kind": "concat", "videos": ["$wan.video", "$wan.video"]},
        ],
    }
    file = tmp_path / "comfy.yaml"
    file.write_text(yaml.safe_dump(definition))
    try:
        code, result = run_cli_json("pipeline", "run", str(file), "--input", f"photo={image}")
    finally:
        run_cli("workflows", "remove", "pipe-wan")

    assert code == 0 and result["status"] == "completed", result.get("error")
    assert len(fresh_comfy.stats()["submits"]) == 1
    (job,) = [r[0] for r in store_rows("SELECT provider_job_id FROM steps WHERE run_id = ? AND name = 'wan'",
                                       result["run_id"])]
    submitted = fresh_comfy.state.history[job]["prompt"][2]
    assert submitted["93"]["inputs"]["text"] == "a slow pan over hills"
    assert submitted["98"]["inputs"]["length"] == 17 and submitted["94"]["inputs"]["fps"] == 16
    wan = next(s for s in result["steps"] if s["id"] == "wan")["items"][0]
    clip = probe_video(Path(wan["outputs"]["video"]["path"]))
    joined = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert joined.frames == 2 * clip.frames
