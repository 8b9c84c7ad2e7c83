"""The approve step inside a pipeline run, as users drive it: ``reelflow pipeline run`` in one process, ``reelflow
approve`` from another. Nothing after the approval starts before the answer; redo renders the judged step again
and asks again; reject ends the run cancelled with no shot rendered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from reelflow.core.media import probe_video
from reelflow.store import repo
from tests.support.cli import REELFLOW, ROOT, run_cli
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value


def _story(tmp_path: Path, idea: str) -> Path:
    definition = {
        "name": "story-approve",
        "inputs": {"idea": {"type": "text", "default": idea},
                   "shots": {"type": "texts", "default": ["one", "two"]}},
        "steps": [
            {"id": "keyframe", "kind": "generate_image", "model": "local-procedural-image", "prompt": "$inputs.idea",
             "params": {"resolution": "320x240"}},
            {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 300},
            {"id": "shots", "kind": "image_to_video", "model": "local-kenburns", "for_each": "$inputs.shots",
             "image": "$look.image", "prompt": ["$inputs.idea", ", ", "$item"],
             "params": {"duration": 1, "fps": 8, "resolution": "160x120"}},
            {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.25}},
        ],
    }
    path = tmp_path / "story.yaml"
    path.write_text(yaml.safe_dump(definition))
    return path


def _start(file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([*REELFLOW, "pipeline", "run", str(file), "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _waiting(idea: str, rounds: int = 1) -> str:
    def check() -> str | None:
        run_id = store_value("SELECT id FROM runs WHERE kind = 'pipeline' AND json_extract(inputs, '$.idea') = ?",
                             idea)
        if run_id and store_value("SELECT COUNT(*) FROM steps WHERE run_id = ? AND name = 'look' AND "
                                  "status = 'waiting'", run_id) and store_value(
                "SELECT COUNT(*) FROM steps WHERE run_id = ? AND name = 'look'", run_id) >= rounds:
            return run_id
        return None
    return wait_until(check, timeout=120, what=f"approval round {rounds} waiting")


def _shot_rows(run_id: str) -> int:
    """Steps after the approval that started (a step that did not run is recorded ``skipped``)."""
    return store_value("SELECT COUNT(*) FROM steps WHERE run_id = ? AND pipeline_step IN ('shots', 'film') AND "
                       "status != 'skipped'", run_id)


def test_approve_from_a_second_process_continues_the_run(tmp_path: Path) -> None:
    repo.latest_event_id()
    idea = "a quiet harbour, approved"
    process = _start(_story(tmp_path, idea))
    run_id = _waiting(idea)
    assert _shot_rows(run_id) == 0, "no step after the approval starts before the answer"
    wait_until(lambda: store_value("SELECT status FROM runs WHERE id = ?", run_id) == "waiting", timeout=30,
               what="the run shown waiting")  # set just after its approval row

    answered = run_cli("approve", run_id, "look")
    assert answered.returncode == 0, answered.stderr
    out, err = process.communicate(timeout=180)
    result = json.loads(out)
    assert process.returncode == 0 and result["status"] == "completed", err[-3000:]
    film = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert film.frames == 14  # two 8-frame clips, one 0.25 s crossfade (2 frames)
    states = {s["id"]: s["status"] for s in result["steps"]}
    assert states == {"keyframe": "completed", "look": "completed", "shots": "completed", "film": "completed"}
    assert result["cost_usd"] == 0.0, "a person's answer costs nothing: the offline run is free, not unknown"


def test_redo_renders_the_keyframe_again_then_reject_cancels_with_no_shot(tmp_path: Path) -> None:
    repo.latest_event_id()
    idea = "a quiet harbour, redone then rejected"
    process = _start(_story(tmp_path, idea))
    run_id = _waiting(idea)
    first = store_rows("SELECT json_extract(detail, '$.seed') FROM steps WHERE run_id = ? AND name = 'keyframe'",
                       run_id)

    redo = run_cli("approve", run_id, "look", "--redo", "--seed", "12345")
    assert redo.returncode == 0, redo.stderr
    _waiting(idea, rounds=2)
    keyframes = store_rows("SELECT json_extract(detail, '$.seed'), status FROM steps WHERE run_id = ? AND "
                           "name = 'keyframe' ORDER BY id", run_id)
    assert keyframes == [(first[0][0], "completed"), (12345, "completed")], "the keyframe rendered again"
    assert _shot_rows(run_id) == 0

    rejected = run_cli("approve", run_id, "look", "--reject")
    assert rejected.returncode == 0, rejected.stderr
    out, _ = process.communicate(timeout=120)
    result = json.loads(out)
    assert result["status"] == "cancelled" and process.returncode != 0
    assert _shot_rows(run_id) == 0, "nothing after a rejected approval starts"
    assert {s["id"]: s["status"] for s in result["steps"]} == {
        "keyframe": "completed", "look": "cancelled", "shots": "skipped", "film": "skipped"}
