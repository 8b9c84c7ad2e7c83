"""An approval's timeout on a suspended deployment run (on a worker, no process waiting on it): ``on_timeout:
approve`` goes on as approved, the default ``cancel`` ends the run cancelled — not failed by Prefect's pause
expiry. The worker's reconcile checks the timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from reelflow.store import repo
from tests.support.cli import ROOT
from tests.support.deployments import one_worker, read_flow_run
from tests.support.polling import wait_until

SCRIPT = r'''
import json, sys
import reelflow
print("RESULT " + json.dumps([reelflow.submit_pipeline(d, via="deployment") for d in json.loads(sys.argv[1])]))
'''


def _definition(name: str, on_timeout: str | None) -> dict:
    look = {"id": "look", "kind": "approve", "target": "still", "timeout": 2,
            **({"on_timeout": on_timeout} if on_timeout else {})}
    return {"name": name, "steps": [
        {"id": "still", "kind": "generate_image", "model": "local-procedural-image",
         "prompt": f"a timeout on a worker {uuid.uuid4().hex[:6]}", "params": {"resolution": "96x64"}},
        look,
        {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$look.image",
         "params": {"duration": 1, "fps": 8, "resolution": "128x96"}}]}


def test_a_suspended_runs_approval_timeout_approves_or_cancels_as_defined(tmp_path: Path) -> None:
    definitions = [_definition("timeout-approves", "approve"), _definition("timeout-cancels", None)]
    with one_worker(tmp_path):
        done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(definitions)], cwd=ROOT,
                              capture_output=True, text=True, timeout=180)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        assert done.returncode == 0 and lines, done.stderr[-3000:]
        approves, cancels = json.loads(lines[-1].removeprefix("RESULT "))
        for run_id in (approves, cancels):
            wait_until(lambda run_id=run_id: repo.get_run(run_id).status in repo.FINISHED, 240,
                       f"run {run_id} to end")

    approved = repo.get_run(approves)
    assert approved.status == "completed", approved.error
    assert [s.status for s in approved.steps if s.name == "clip"] == ["completed"]
    received = [e.data for e in repo.events_after(approves) if e.kind == "approval" and e.data
                and e.data.get("received")]
    assert [(d["decision"], d["via"]) for d in received] == [("approve", "timeout")]
    flow_run = read_flow_run(approved.prefect_flow_run_id or "")
    assert flow_run.deployment_id is not None and flow_run.state is not None
    assert flow_run.state.type.value == "COMPLETED"

    cancelled = repo.get_run(cancels)
    assert cancelled.status == "cancelled" and "no answer within 2 s" in (cancelled.error or ""), cancelled.error
    assert [s.name for s in cancelled.steps if s.name == "clip" and s.status != "pending"] == [], \
        "nothing after the approval started"
    state = read_flow_run(cancelled.prefect_flow_run_id or "").state
    assert state is not None and state.type.value == "CANCELLED", state
