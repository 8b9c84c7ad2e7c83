"""A pipeline run paused at an approval whose process was killed (kill -9): ``reelflow approve`` from another process
still takes the answer and the run goes on in a detached process, reusing the steps completed before (not rendered
again) and not asking again."""

from __future__ import annotations

import signal
import subprocess
import uuid
from pathlib import Path
from uuid import UUID

import yaml
from prefect.client.orchestration import get_client

from reelflow.store import repo
from tests.support.cli import REELFLOW, ROOT, run_cli
from tests.support.pipeline_defs import keyframe_look_shots
from tests.support.polling import wait_until
from tests.support.store import store_rows


def _flow_run_state(flow_run_id: str) -> str | None:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return state.type.value if state is not None else None


def test_an_answer_to_a_paused_run_whose_process_was_killed_resumes_it(tmp_path: Path) -> None:
    idea = f"a lighthouse, paused then killed {uuid.uuid4().hex[:6]}"
    file = tmp_path / "story.yaml"
    file.write_text(yaml.safe_dump(keyframe_look_shots("story-dead-pause", idea)))
    repo.latest_event_id()  # the store exists before it is polled
    first = subprocess.Popen([*REELFLOW, "pipeline", "run", str(file), "--json"], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def paused() -> tuple[str, str] | None:
        found = store_rows("SELECT s.run_id, json_extract(s.detail, '$.flow_run_id') FROM steps s JOIN runs r ON "
                           "r.id = s.run_id WHERE json_extract(r.inputs, '$.idea') = ? AND s.name = 'look' AND "
                           "s.status = 'waiting'", idea)
        return found[0] if found and _flow_run_state(found[0][1]) == "PAUSED" else None

    run_id, killed_flow_run = wait_until(paused, 120, "the approval to wait")
    keyframe_before = [(s.status, s.finished_at) for s in repo.get_run(run_id).steps if s.name == "keyframe"]
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)

    answered = run_cli("approve", run_id, "look")
    assert answered.returncode == 0, answered.stdout + answered.stderr
    wait_until(lambda: repo.get_run(run_id).status in repo.FINISHED, 180, f"run {run_id} to end")

    run = repo.get_run(run_id)
    assert run.status == "completed", run.error
    assert [(s.status, s.finished_at) for s in run.steps if s.name == "keyframe"] == keyframe_before, \
        "the keyframe was reused, not rendered again"
    assert sorted(s.name for s in run.steps if s.pipeline_step == "shots" and s.status == "completed") == [
        "shots[0]", "shots[1]"]
    approvals = [e.data for e in repo.events_after(run_id) if e.kind == "approval" and e.data]
    assert sum(1 for d in approvals if d.get("question")) == 1, "answered once, not asked again"
    assert [(d["decision"], d["via"]) for d in approvals if d.get("received")] == [("approve", "cli")]
    assert run.prefect_flow_run_id != killed_flow_run, "the run went on in a new flow run"
    assert _flow_run_state(killed_flow_run) == "CRASHED", "the killed process's paused flow run is not left Paused"
    assert _flow_run_state(run.prefect_flow_run_id or "") == "COMPLETED"
