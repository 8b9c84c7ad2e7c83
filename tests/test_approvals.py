"""The approval step on Prefect's pause with input, answered the ways people answer it: the Prefect UI's own resume
with ``run_input`` (Prefect's client), ``reelflow approve`` from a second process, and the REST API under uvicorn.

A small probe flow calls ``await_approval`` from its body as the pipeline engine does, re-renders its "keyframe" on
a redo, and records a step "after" once approved: nothing may start before the answer."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.runtime import flow_run
from prefect.states import Cancelled, State

from reelflow.core.domain import MediaRef
from reelflow.orchestration.deployments import WORK_POOL
from reelflow.runs.approvals import await_approval
from reelflow.store import repo
from tests.support.cli import REELFLOW, ROOT, run_cli
from tests.support.deployments import one_worker
from tests.support.pipeline_defs import keyframe_look_shots
from tests.support.polling import wait_until
from tests.support.store import step_row, store_rows
from tests.support.web_api import auth_headers, error_of, serve_api

PROBE_ENTRYPOINT = "tests/test_approvals.py:approval_probe"
SUBJECT = MediaRef(url="https://cdn.example.com/keyframe.png", content_type="image/png")
ENV = {"COLUMNS": "300"}


@flow(name="approval-probe")
async def approval_probe(run_id: str, timeout_s: float | None = None, on_timeout: str = "cancel") -> Any:
    repo.mark_run(run_id, "running", prefect_flow_run_id=str(flow_run.id))
    rounds: list[dict[str, Any]] = []
    while True:
        answer = await await_approval(run_id, "look", SUBJECT, None, timeout_s=timeout_s,
                                      on_timeout=on_timeout)  # type: ignore[arg-type]
        rounds.append(asdict(answer))
        if answer.decision != "redo":
            break
        step_id, _ = repo.open_step(run_id, "keyframe", "local", prefect_task_run_id=None)
        repo.close_step(step_id, "completed", detail={"seed": answer.seed, "prompt": answer.prompt})
    if answer.decision in ("reject", "timeout"):
        return Cancelled(message=f"approval: {answer.decision}")
    step_id, _ = repo.open_step(run_id, "after", "local", prefect_task_run_id=None)
    repo.close_step(step_id, "completed")
    repo.mark_run(run_id, "completed")
    return {"rounds": rounds}


def _recorded_run() -> str:
    run_id = uuid.uuid4().hex
    repo.create_run(run_id=run_id, idempotency_key=run_id, spec={"model": "local-kenburns"},
                    model_id="local-kenburns", backend="local")
    return run_id


class Probe:
    """The probe flow running in a thread of this process (its own event loop), against the session's server;
    with ``process``, in a fresh interpreter of its own instead."""

    def __init__(self, timeout_s: float | None = None, on_timeout: str = "cancel", *, process: bool = False) -> None:
        self.run_id = _recorded_run()
        self.state: State | None = None
        self.process: subprocess.Popen[str] | None = None
        if process:
            script = ("import asyncio, sys; from tests.test_approvals import approval_probe; "
                      "asyncio.run(approval_probe(sys.argv[1]))")
            self.process = subprocess.Popen([sys.executable, "-c", script, self.run_id], cwd=ROOT, text=True,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return
        self._thread = threading.Thread(target=self._run, args=(timeout_s, on_timeout), daemon=True)
        self._thread.start()

    def _run(self, timeout_s: float | None, on_timeout: str) -> None:
        self.state = asyncio.run(approval_probe(self.run_id, timeout_s, on_timeout, return_state=True))

    def waiting(self, round_no: int = 1) -> str:
        """Wait until round ``round_no`` of the approval is waiting (Prefect Paused); returns the flow run id."""
        def paused() -> str | None:
            rows = store_rows("SELECT status, detail FROM steps WHERE run_id = ? AND name = 'look' ORDER BY id",
                              self.run_id)
            if len(rows) < round_no or rows[round_no - 1][0] != "waiting":
                return None
            flow_run_id = json.loads(rows[round_no - 1][1])["flow_run_id"]
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(flow_run_id)).state
            return flow_run_id if state is not None and state.is_paused() else None

        return wait_until(paused, 60, f"approval round {round_no} of run {self.run_id} to wait")

    def ended(self) -> State:
        self._thread.join(60)
        assert not self._thread.is_alive(), f"the probe flow of run {self.run_id} did not end"
        assert self.state is not None
        return self.state

    def steps(self, name: str) -> list[str]:
        return [s for (s,) in store_rows("SELECT status FROM steps WHERE run_id = ? AND name = ?", self.run_id, name)]

    def answers(self) -> list[dict[str, Any]]:
        return [json.loads(d) for (d,) in store_rows(
            "SELECT data FROM events WHERE run_id = ? AND kind = 'approval' ORDER BY id", self.run_id)
            if d and json.loads(d).get("received")]


def _at(value: str | datetime) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=__import__("datetime").UTC).timestamp()


def test_the_prefect_ui_resume_with_input_approves_and_only_then_the_next_step_starts() -> None:
    probe = Probe()
    flow_run_id = probe.waiting()
    assert repo.get_run(probe.run_id).status == "waiting"
    assert probe.steps("after") == [], "nothing downstream starts before the answer"
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
        assert state is not None and state.name == "Paused" and state.state_details.run_input_keyset
        schema = client.read_flow_run_input(UUID(flow_run_id), state.state_details.run_input_keyset["schema"])
        description = client.read_flow_run_input(UUID(flow_run_id),
                                                 state.state_details.run_input_keyset["description"])
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(like_=f"approval-{probe.run_id}")))
    assert set(json.loads(schema)["properties"]) == {"decision", "prompt", "seed", "note"}, "the UI's form"
    assert SUBJECT.url in description
    assert artifacts and SUBJECT.url in str(artifacts[0].data), "an artifact links what is judged"
    question = next(e for e in repo.events_after(probe.run_id) if e.kind == "approval")
    assert question.data and question.data["subject_url"] == SUBJECT.url

    # A reconcile from a second process while it waits leaves it alone: its owner is alive, Prefect has it Paused.
    reconcile = subprocess.run([sys.executable, "-c", "import asyncio; from reelflow.runs.reconcile import "
                                "reconcile_orphans; print(len(asyncio.run(reconcile_orphans())))"],
                               capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert reconcile.returncode == 0 and reconcile.stdout.strip().endswith("0"), reconcile.stderr
    assert repo.get_run(probe.run_id).status == "waiting"

    resume_flow_run(UUID(flow_run_id), run_input={"decision": "approve", "note": "looks right"})
    assert probe.ended().is_completed()
    assert repo.get_run(probe.run_id).status == "completed" and probe.steps("after") == ["completed"]
    assert probe.answers()[0]["via"] == "prefect-ui" and probe.answers()[0]["note"] == "looks right"
    assert step_row(probe.run_id, "look")["status"] == "completed"
    again = run_cli("approve", probe.run_id, "look", env=ENV)
    assert again.returncode == 1 and "is not waiting for an answer: it is completed" in again.stderr, again.stderr


def test_reelflow_approve_redo_with_a_prompt_renders_again_asks_again_then_approves() -> None:
    probe = Probe()
    probe.waiting()
    bad = run_cli("approve", probe.run_id, "look", "--prompt", "sunrise instead", env=ENV)
    assert bad.returncode == 2 and "--prompt: only a redo takes a new prompt" in bad.stderr, bad.stderr
    both = run_cli("approve", probe.run_id, "look", "--reject", "--redo", env=ENV)
    assert both.returncode == 2 and "--reject and --redo" in both.stderr
    unknown = run_cli("approve", probe.run_id, "nope", env=ENV)
    assert unknown.returncode == 2 and "has no step 'nope'" in unknown.stderr, unknown.stderr

    redo = run_cli("approve", probe.run_id[:10], "look", "--redo", "--prompt", "sunrise instead", env=ENV)
    assert redo.returncode == 0, redo.stderr
    probe.waiting(round_no=2)
    assert probe.steps("keyframe") == ["completed"] and probe.steps("after") == []
    assert step_row(probe.run_id, "keyframe")["detail"] == {"seed": None, "prompt": "sunrise instead"}

    sent = time.time()
    done = run_cli("approve", probe.run_id, "look", "--note", "better", "--json", env=ENV)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "sent", done.stderr
    state = probe.ended()
    assert state.is_completed()
    rounds = [(a["decision"], a["via"], a["prompt"]) for a in probe.answers()]
    assert rounds == [("redo", "cli", "sunrise instead"), ("approve", "cli", None)]
    answered = max(e.created_at for e in repo.events_after(probe.run_id) if e.kind == "approval"
                   and e.data and e.data.get("via") == "cli" and not e.data.get("received"))
    after = repo.get_run(probe.run_id).steps[-1]
    assert after.name == "after"
    latency = _at(after.started_at) - _at(answered)
    print(f"approval answer (reelflow approve, sent at {sent:.3f}) -> next step started: {latency:.3f} s")
    assert latency < 5, latency


def test_rest_redo_with_a_seed_then_reject_ends_the_run_cancelled_and_a_second_answer_is_refused() -> None:
    probe = Probe()
    probe.waiting()
    with serve_api() as served:
        base = f"{served.url}/api/runs/{probe.run_id}/steps/look/approve"
        assert httpx.post(base, json={"decision": "approve"}).status_code == 401
        field, message = error_of(httpx.post(base, json={"decision": "approve", "seed": 3}, headers=auth_headers()),
                                  422)
        assert field == "seed" and "only a redo" in message
        field, _ = error_of(httpx.post(base, json={"decision": "maybe"}, headers=auth_headers()), 422)
        assert field == "decision"
        field, message = error_of(httpx.post(f"{served.url}/api/runs/{probe.run_id}/steps/nope/approve",
                                             json={"decision": "approve"}, headers=auth_headers()), 404)
        assert field == "step" and "has no step 'nope'" in message
        error_of(httpx.post(f"{served.url}/api/runs/{uuid.uuid4().hex}/steps/look/approve",
                            json={"decision": "approve"}, headers=auth_headers()), 404)

        redo = httpx.post(base, json={"decision": "redo", "seed": 7}, headers=auth_headers())
        assert redo.status_code == 200 and redo.json()["decision"] == "redo", redo.text
        probe.waiting(round_no=2)
        assert step_row(probe.run_id, "keyframe")["detail"] == {"seed": 7, "prompt": None}
        graph = httpx.get(f"{served.url}/api/runs/{probe.run_id}", headers=auth_headers()).json()
        assert graph["status"] == "waiting"
        assert [(s["name"], s["kind"], s["status"]) for s in graph["steps"]] == [
            ("look", "approve", "cancelled"), ("keyframe", None, "completed"), ("look", "approve", "waiting")]

        reject = httpx.post(base, json={"decision": "reject", "note": "wrong sea"}, headers=auth_headers())
        assert reject.status_code == 200, reject.text
        field, message = error_of(httpx.post(base, json={"decision": "approve"}, headers=auth_headers()), 409)
        assert field == "step" and "not waiting" in message
        state = probe.ended()
    assert state.is_cancelled()
    run = repo.get_run(probe.run_id)
    assert run.status == "cancelled" and "rejected at approval 'look'" in (run.error or "")
    assert probe.steps("after") == [], "a rejected run starts nothing after the approval"
    assert [(a["decision"], a["via"], a["seed"]) for a in probe.answers()] == [("redo", "api", 7),
                                                                               ("reject", "api", None)]
    with get_client(sync_client=True) as client:
        flow_state = client.read_flow_run(UUID(run.prefect_flow_run_id or "")).state
    assert flow_state is not None and flow_state.is_cancelled()


def test_no_answer_in_time_cancels_or_approves_as_the_step_says() -> None:
    cancelled, approved = Probe(timeout_s=1.5, on_timeout="cancel"), Probe(timeout_s=1.5, on_timeout="approve")
    assert cancelled.ended().is_cancelled()
    run = repo.get_run(cancelled.run_id)
    assert run.status == "cancelled" and "no answer within 1.5 s" in (run.error or "")
    assert cancelled.steps("after") == [] and cancelled.answers()[0]["decision"] == "timeout"
    late = run_cli("approve", cancelled.run_id, "look", env=ENV)
    assert late.returncode == 1 and "not waiting" in late.stderr

    assert approved.ended().is_completed()
    assert approved.steps("after") == ["completed"]
    assert [(a["decision"], a["via"]) for a in approved.answers()] == [("approve", "timeout")]


def test_an_approval_whose_process_was_killed_refuses_an_answer_that_nothing_would_continue() -> None:
    probe = Probe(process=True)
    assert probe.process is not None
    try:
        probe.waiting()
    finally:
        probe.process.send_signal(signal.SIGKILL)
        probe.process.wait(30)
    for _ in range(2):  # refused, and the step stays waiting (not "answered") for when the run is started again
        done = run_cli("approve", probe.run_id, "look", env=ENV)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "the process that ran it" in done.stderr and "is gone" in done.stderr, done.stderr
        assert step_row(probe.run_id, "look")["status"] == "waiting"


def test_a_deployment_run_suspends_and_once_answered_runs_again_from_the_top_on_a_worker(tmp_path: Path) -> None:
    with one_worker(tmp_path):
        deployment_id = approval_probe.from_source(source=str(ROOT), entrypoint=PROBE_ENTRYPOINT).deploy(
            name="approval-probe", work_pool_name=WORK_POOL, print_next_steps=False)
        run_id = _recorded_run()
        flow_run = run_deployment(deployment_id, parameters={"run_id": run_id}, timeout=0)
        flow_run_id = str(flow_run.id)

        def suspended() -> bool:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(flow_run.id).state
            return bool(state and state.name == "Suspended" and step_row(run_id, "look")["status"] == "waiting")

        wait_until(suspended, 180, f"deployment run {flow_run_id} to suspend at the approval")
        assert repo.get_run(run_id).status == "waiting"
        done = run_cli("approve", run_id, "look", "--note", "on a worker", env=ENV)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: repo.get_run(run_id).status in repo.FINISHED, 180, f"run {run_id} to end")
    run = repo.get_run(run_id)
    assert run.status == "completed" and run.prefect_flow_run_id == flow_run_id, run.error
    assert [s.name for s in run.steps] == ["look", "after"], "the approval is one round; the next step ran once"
    received = [e.data for e in repo.events_after(run_id) if e.kind == "approval" and e.data]
    assert sum(1 for d in received if d.get("question")) == 1, "asked once, though the flow ran twice"
    assert [(d["decision"], d["via"], d["note"]) for d in received if d.get("received")] == [
        ("approve", "cli", "on a worker")]


def test_an_answer_to_a_run_without_a_waiting_approval_is_refused_clearly() -> None:
    run_id = _recorded_run()
    step_id, _ = repo.open_step(run_id, "i2v_local", "local", prefect_task_run_id=None)
    repo.close_step(step_id, "completed")
    done = run_cli("approve", run_id, "i2v_local", env=ENV)
    assert done.returncode == 1 and "is not waiting for an answer: it is not an approval step" in done.stderr
    missing = run_cli("approve", uuid.uuid4().hex, "look", env=ENV)
    assert missing.returncode == 2 and "no run with id" in missing.stderr


def test_an_approval_left_by_a_killed_run_is_asked_again_by_pipeline_resume_and_then_goes_on(tmp_path: Path) -> None:
    idea = f"a harbour, killed while waiting {uuid.uuid4().hex[:6]}"
    story = keyframe_look_shots("story-killed", idea)
    file = tmp_path / "story.yaml"
    file.write_text(yaml.safe_dump(story))
    repo.latest_event_id()  # the store exists before it is polled
    first = subprocess.Popen([*REELFLOW, "pipeline", "run", str(file), "--json"], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def round_waiting(not_in: str | None = None) -> tuple[str, str] | None:
        found = store_rows("SELECT s.run_id, json_extract(s.detail, '$.flow_run_id') FROM steps s JOIN runs r ON "
                           "r.id = s.run_id WHERE json_extract(r.inputs, '$.idea') = ? AND s.name = 'look' AND "
                           "s.status = 'waiting'", idea)
        if not found or found[0][1] == not_in:
            return None
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(found[0][1])).state
        return found[0] if state is not None and state.is_paused() else None

    run_id, killed_flow_run = wait_until(round_waiting, 120, "the approval to wait")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)

    resumed = subprocess.Popen([*REELFLOW, "pipeline", "resume", run_id, "--json"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wait_until(lambda: round_waiting(not_in=killed_flow_run), 120, "the resumed run to ask again")
    assert [s.name for s in repo.get_run(run_id).steps if s.pipeline_step == "shots" and s.status == "completed"] \
        == [], "nothing after the approval started"
    approved = run_cli("approve", run_id, "look", env=ENV)
    assert approved.returncode == 0, approved.stderr
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0 and json.loads(out)["status"] == "completed", err[-3000:]
    run = repo.get_run(run_id)
    assert [s.status for s in run.steps if s.name == "keyframe"] == ["completed"], "the keyframe was not redone"
    asked = [e for e in repo.events_after(run_id) if e.kind == "approval" and e.data and e.data.get("question")]
    assert len(asked) == 2, "asked again in the resumed flow run"
