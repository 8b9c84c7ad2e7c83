"""A user's plain script (a fresh interpreter, no PREFECT_* variables) that calls ``reelflow.submit`` or
``reelflow.submit_pipeline`` with no worker online and exits at once: its runs still complete, rendered by a
detached child process that owns them in the store, can be cancelled from another process, and exits when its
run has ended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reelflow.store import owners, repo
from tests.support.cli import ROOT, run_cli
from tests.support.deployments import QUICK, SLOW
from tests.support.polling import wait_until

SCRIPT = r'''
import json, os, sys
import reelflow
video, pipeline = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ids = [reelflow.submit(video, force=True)] if video else []
if pipeline:
    ids.append(reelflow.submit_pipeline(pipeline, force=True))
print("RESULT " + json.dumps({"ids": ids, "pid": os.getpid()}), flush=True)
'''

PIPELINE = {"name": "detached-submit", "steps": [
    {"id": "still", "kind": "generate_image", "model": "local-procedural-image", "prompt": "a detached render",
     "params": {"resolution": "96x64"}},
    {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$still.image",
     "params": {"duration": 1, "fps": 8, "resolution": "128x96"}}]}


def _submit_and_exit(tmp_path: Path, video: dict | None, pipeline: dict | None) -> tuple[list[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(video), json.dumps(pipeline)], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=180)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return result["ids"], result["pid"]


def _renderer(run_id: str) -> int:
    owner, _ = owners.owner_of(run_id)
    assert owner, f"run {run_id} has no owner"
    return int(owner.split(":")[1])


def _gone(pid: int) -> bool:
    """The process has exited (a zombie nobody reaped yet counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_a_script_that_submits_and_exits_leaves_its_runs_to_complete(tmp_path: Path) -> None:
    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    (video_id, pipeline_id), script_pid = _submit_and_exit(tmp_path, {**QUICK, "image": image}, PIPELINE)
    for run_id in (video_id, pipeline_id):
        wait_until(lambda run_id=run_id: repo.get_run(run_id).status in repo.FINISHED, 180, f"run {run_id} to end")
        run = repo.get_run(run_id)
        assert run.status == "completed", run.error
        assert run.video is not None and Path(run.video.path or "").is_file(), run.outputs
        renderer = _renderer(run_id)
        assert renderer != script_pid, "the run was rendered by the script's own process"
        wait_until(lambda renderer=renderer: _gone(renderer), 60, f"the renderer {renderer} to exit")
    assert {s.name for s in repo.get_run(pipeline_id).steps} >= {"still", "clip"}


def test_a_detached_run_is_cancelled_from_another_process_and_its_renderer_exits(tmp_path: Path) -> None:
    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    (run_id,), _ = _submit_and_exit(tmp_path, {**SLOW, "image": image}, None)
    wait_until(lambda: any(s.status == "running" for s in repo.get_run(run_id).steps), 120, "the render to start")
    renderer = _renderer(run_id)
    assert not _gone(renderer)
    cancelled = run_cli("cancel", run_id, "--timeout", "60")
    assert cancelled.returncode == 0, cancelled.stderr[-3000:]
    assert repo.get_run(run_id).status == "cancelled"
    wait_until(lambda: _gone(renderer), 60, f"the renderer {renderer} to exit")
