"""The Python API on pipeline runs from a user's plain script (a fresh interpreter, no PREFECT_* variables):
``reelflow.run_pipeline`` blocks until done; ``reelflow.submit_pipeline`` returns a run id that ``get`` and
``cancel`` work on (here cancelled while it waits at an approval)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import ROOT
from tests.support.files import make_image

SCRIPT = r'''
import json, sys, time
import reelflow
definition, photo, waiting = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
done = reelflow.run_pipeline(definition, {"photo": photo})
run_id = reelflow.submit_pipeline(waiting, via="local")
deadline = time.monotonic() + 120
while reelflow.get(run_id).status != "waiting" and time.monotonic() < deadline:
    time.sleep(0.1)
seen = reelflow.get(run_id).status
ended = reelflow.cancel(run_id, timeout=60)
print("RESULT " + json.dumps({"status": done.status, "video": done.video is not None, "seen": seen,
                              "cancelled": ended.status, "steps": [s.name for s in reelflow.get(run_id).steps]}))
'''

ONE_SHOT = {"name": "api-one", "inputs": {"photo": {"type": "image"}}, "steps": [
    {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$inputs.photo",
     "params": {"duration": 1, "fps": 8, "resolution": "160x120"}}]}
WAITS = {"name": "api-waits", "steps": [
    {"id": "still", "kind": "generate_image", "model": "local-procedural-image", "prompt": "api cancel",
     "params": {"resolution": "64x48"}},
    {"id": "look", "kind": "approve", "target": "still", "timeout": 600},
    {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$look.image"}]}


def test_run_submit_get_cancel_a_pipeline_from_a_plain_script(tmp_path: Path) -> None:
    photo = make_image(tmp_path / "photo.png", size=(320, 240))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(ONE_SHOT), str(photo), json.dumps(WAITS)],
                          cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["status"] == "completed" and result["video"] is True
    assert result["seen"] == "waiting" and result["cancelled"] == "cancelled"
