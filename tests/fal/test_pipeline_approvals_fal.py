"""The story on fal (the HTTPS emulator) with its approval: no Wan clip is submitted, let alone paid, before the
answer; a rejection through the REST API (a second process: the run executes in ``reelflow pipeline run``) ends the
run cancelled with no video submit at all, and an approval through ``reelflow approve`` submits the three shots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import yaml

from reelflow.store import repo
from tests.emulators.fal import FalEmulator
from tests.support.cli import REELFLOW, ROOT, run_cli
from tests.support.fal_pipeline import FLUX, WAN, Env
from tests.support.polling import wait_until
from tests.support.store import store_value
from tests.support.web_api import auth_headers, serve_api


def _story(tmp_path: Path, idea: str) -> Path:
    definition = {
        "name": "story-fal-approve",
        "inputs": {"idea": {"type": "text", "default": idea},
                   "shots": {"type": "texts", "default": ["waves crash below", "the beam sweeps the sea",
                                                          "a gull crosses the light"]}},
        "steps": [
            {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea",
             "params": {"seed": 7}},
            {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
            {"id": "shots", "kind": "image_to_video", "model": "wan-2.5-i2v", "for_each": "$inputs.shots",
             "image": "$look.image", "prompt": ["$inputs.idea", ", ", "$item"],
             "params": {"duration": 5, "resolution": "480p", "seed": 1}},
            {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.5}},
        ],
    }
    path = tmp_path / "story.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def _start(env: Env, file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*REELFLOW, "pipeline", "run", str(file), "--json"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _waiting(idea: str) -> str:
    def check() -> str | None:
        run_id = store_value("SELECT id FROM runs WHERE kind = 'pipeline' AND json_extract(inputs, '$.idea') = ?",
                             idea)
        waiting = run_id and store_value("SELECT COUNT(*) FROM steps WHERE run_id = ? AND name = 'look' AND "
                                         "status = 'waiting'", run_id)
        return run_id if waiting else None

    return wait_until(check, 120, f"the approval of '{idea}' to wait")


def test_a_rejection_over_rest_submits_no_video_and_an_approval_submits_the_shots(emu: FalEmulator, env: Env,
                                                                                   tmp_path: Path) -> None:
    repo.latest_event_id()  # the store exists before it is polled
    idea = "a lighthouse, rejected on fal"
    process = _start(env, _story(tmp_path, idea))
    run_id = _waiting(idea)
    assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 1}, "no clip is submitted before the answer"
    with serve_api() as served:
        rejected = httpx.post(f"{served.url}/api/runs/{run_id}/steps/look/approve",
                              json={"decision": "reject", "note": "not this sea"}, headers=auth_headers())
        assert rejected.status_code == 200, rejected.text
    out, err = process.communicate(timeout=120)
    assert process.returncode != 0 and json.loads(out)["status"] == "cancelled", err[-3000:]
    assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 1}, "a rejected run submits no video"
    assert repo.get_run(run_id).status == "cancelled"

    idea = "a lighthouse, approved on fal"
    process = _start(env, _story(tmp_path, idea))
    run_id = _waiting(idea)
    assert emu.stats()["submits"]["by_endpoint"].get(WAN) is None
    approved = run_cli("approve", run_id, "look")
    assert approved.returncode == 0, approved.stderr
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0 and json.loads(out)["status"] == "completed", err[-3000:]
    assert emu.stats()["submits"]["by_endpoint"].get(WAN) == 3, "the three shots, each once, after the answer"
