"""Pipeline runs from outside: ``POST /api/pipelines/{id}/runs`` on the app under uvicorn, ``reelflow batch FILE
--pipeline DEF`` as a user runs it, and the ``pipeline-run`` deployment through a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from uuid import UUID

import httpx
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run

from reelflow.orchestration.deployments import PIPELINE_DEPLOYMENT, WORK_POOL
from reelflow.runs.pipelines import record_pipeline_run
from reelflow.store import repo
from tests.support.cli import ROOT, run_cli
from tests.support.deployments import one_worker, read_flow_run
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value
from tests.support.web_api import auth_headers, error_of, serve_api

SAMPLE = str(ROOT / "reelflow" / "assets" / "sample.jpg")
SAMPLE_URL = "https://example.com/sample.jpg"
CLIP = {"frames": 6, "fps": 6, "resolution": "128x96"}


def _definition(name: str) -> dict:
    return {"name": name, "inputs": {"picture": {"type": "image", "default": SAMPLE},
                                     "idea": {"type": "text", "default": "a slow drift"}},
            "steps": [{"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$inputs.picture",
                       "prompt": "$inputs.idea", "params": CLIP}]}


def _stored(base: str, body: dict) -> str:
    made = httpx.post(f"{base}/api/pipelines", json={"name": f"p-{uuid.uuid4().hex[:8]}", **body},
                      headers=auth_headers())
    assert made.status_code == 201, made.text
    return made.json()["pipeline_id"]


def _runs() -> int:
    return int(store_value("SELECT count(*) FROM runs"))


def test_a_stored_pipeline_runs_from_rest_and_its_run_shows_the_step_graph(tmp_path: Path) -> None:
    with serve_api() as served:
        first = _definition(f"rest-{uuid.uuid4().hex[:6]}")
        pipeline_id = _stored(served.url, {"definition": {**first, "description": "version 1"}})
        edited = httpx.put(f"{served.url}/api/pipelines/{pipeline_id}", json={"definition": first},
                           headers=auth_headers())
        assert edited.status_code == 200 and edited.json()["version"] == 2, edited.text
        preset = _stored(served.url, {"spec": {"model": "local-kenburns", **CLIP, "image": SAMPLE_URL}})
        base = f"{served.url}/api/pipelines/{pipeline_id}/runs"
        assert httpx.post(base, json={}).status_code == 401
        before = _runs()
        field, message = error_of(httpx.post(base, json={"inputs": {"nope": 1}}, headers=auth_headers()), 422)
        assert field == "inputs.nope" and "is not an input of" in message
        field, message = error_of(httpx.post(base, json={"inputs": {"picture": SAMPLE}}, headers=auth_headers()),
                                  422)
        assert field == "inputs.picture" and "file paths on the server are not accepted" in message
        field, _ = error_of(httpx.post(base, json={"inputs": {}, "extra": 1}, headers=auth_headers()), 422)
        assert field == "extra"
        assert _runs() == before, "nothing is recorded for a refused request"
        error_of(httpx.post(f"{served.url}/api/pipelines/{uuid.uuid4().hex}/runs", json={}, headers=auth_headers()),
                 404)
        field, message = error_of(httpx.post(f"{served.url}/api/pipelines/{preset}/runs",
                                             json={"inputs": {"image": "upload:" + "0" * 64}},
                                             headers=auth_headers()), 422)
        assert field == "inputs.image" and "no upload with id" in message, "a preset runs as its one-step pipeline"

        made = httpx.post(base, json={"inputs": {"idea": "waves at dusk"}}, headers=auth_headers())
        assert made.status_code == 201, made.text
        run_id = made.json()["run_id"]

        def ended() -> dict | None:
            run = httpx.get(f"{served.url}/api/runs/{run_id}", headers=auth_headers()).json()
            return run if run["status"] in ("completed", "failed", "cancelled") else None

        run = wait_until(ended, 120, f"pipeline run {run_id} to end")
        assert run["status"] == "completed", run
        clip = next(s for s in run["steps"] if s["name"] == "clip")
        assert (clip["kind"], clip["pipeline_step"], clip["fan_index"], clip["depends_on"]) == (
            "image_to_video", "clip", None, [])
        assert clip["idempotency_key"] and len(clip["idempotency_key"]) == 64
        graph = httpx.get(f"{served.url}/api/runs/{run_id}/graph", headers=auth_headers()).json()
        costs = [graph["run"]["cost_usd"]] + [c for step in graph["steps"]
                                              for c in [step["cost_usd"], *(i["cost_usd"] for i in step["items"])]]
        assert costs and all(type(c) is int or type(c) is float for c in costs), f"money as JSON numbers: {costs}"
        assert store_value("SELECT pipeline_version FROM runs WHERE id = ?", run_id) == 2, "the latest version"
        assert store_value("SELECT pipeline_id FROM runs WHERE id = ?", run_id) == pipeline_id
        again = httpx.post(base, json={"inputs": {"idea": "waves at dusk"}}, headers=auth_headers())
        assert again.status_code == 200 and again.json()["run_id"] == run_id and again.json()["cached"]


def test_reelflow_batch_runs_the_pipeline_once_per_row(tmp_path: Path) -> None:
    name = f"batch-{uuid.uuid4().hex[:6]}"
    definition = tmp_path / "def.yaml"
    definition.write_text(yaml.safe_dump(_definition(name)))
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "hill.jpg").write_bytes(Path(SAMPLE).read_bytes())
    rows = tmp_path / "rows.csv"
    rows.write_text("idea,picture\nfirst light,pictures/hill.jpg\nlast light,\n")
    done = run_cli("batch", str(rows), "--pipeline", str(definition), "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["total"] == 2 and summary["counts"] == {"completed": 2}, summary
    inputs = [json.loads(store_value("SELECT inputs FROM runs WHERE id = ?", item["run_id"]))
              for item in summary["items"]]
    assert [i["idea"] for i in inputs] == ["first light", "last light"]
    assert all(store_value("SELECT batch_id FROM runs WHERE id = ?", i["run_id"]) == summary["batch_id"]
               for i in summary["items"])

    again = run_cli("batch", str(rows), "--pipeline", str(definition), "--json", timeout=300)
    assert again.returncode == 0 and json.loads(again.stdout)["cached"] == 2, "finished rows are reused"

    bad_rows = tmp_path / "bad.jsonl"
    bad_rows.write_text(json.dumps({"idea": "fine"}) + "\n" + json.dumps({"colour": "red"}) + "\n")
    partly = run_cli("batch", str(bad_rows), "--pipeline", str(definition), "--json", timeout=300)
    assert partly.returncode == 1, partly.stdout + partly.stderr
    statuses = [(i["status"], i["error"]) for i in json.loads(partly.stdout)["items"]]
    assert statuses[0][0] == "completed" and statuses[1][0] == "rejected" and "inputs.colour" in statuses[1][1]

    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({**_definition(name), "steps": [
        {**_definition(name)["steps"][0], "image": "$nowhere.image"}]}))
    refused = run_cli("batch", str(rows), "--pipeline", str(broken))
    assert refused.returncode == 2 and "steps.clip." in refused.stderr and "nowhere" in refused.stderr, refused.stderr
    video_option = run_cli("batch", str(rows), "--pipeline", str(definition), "--model", "local-kenburns")
    assert video_option.returncode == 2 and "--model is for video batches" in video_option.stderr


def test_the_pipeline_run_deployment_suspends_at_the_approval_and_runs_again_from_the_top_once_answered(
        tmp_path: Path) -> None:
    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    entry = next(d for d in declared["deployments"] if d["name"] == PIPELINE_DEPLOYMENT.partition("/")[2])
    assert entry["entrypoint"] == "flows/pipeline_flow.py:pipeline_run" and entry["work_pool"]["name"] == WORK_POOL
    story = {"name": f"deploy-{uuid.uuid4().hex[:6]}", "inputs": {"idea": {"type": "text", "default": "a pier"}},
             "steps": [{"id": "keyframe", "kind": "generate_image", "model": "local-procedural-image",
                        "prompt": "$inputs.idea", "params": {"resolution": "320x240"}},
                       {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 600},
                       {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$look.image",
                        "prompt": "$inputs.idea", "params": CLIP}]}
    from reelflow.core.pipeline.load import load_definition

    run_id = record_pipeline_run(load_definition(story), {"idea": "on a worker"})
    with one_worker(tmp_path):
        flow_run = run_deployment(PIPELINE_DEPLOYMENT, parameters={"run_id": run_id}, timeout=0)
        wait_until(lambda: _suspended(str(flow_run.id)), 180, "the deployment run to suspend at its approval")
        assert repo.get_run(run_id).status == "waiting"
        answered = run_cli("approve", run_id, "look")
        assert answered.returncode == 0, answered.stderr
        wait_until(lambda: repo.get_run(run_id).status in repo.FINISHED, 180, f"run {run_id} on the worker")
    run = repo.get_run(run_id)
    assert run.status == "completed", run.error
    assert run.prefect_flow_run_id == str(flow_run.id)
    assert [(s.name, s.status) for s in run.steps if s.name in ("keyframe", "look", "clip")] == [
        ("keyframe", "completed"), ("look", "completed"), ("clip", "completed")], "the keyframe was not redone"


def _suspended(flow_run_id: str) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return bool(state and state.name == "Suspended")


def _load(name: str):
    from reelflow.core.pipeline.load import load_definition

    return load_definition(_definition(name))


def test_the_story_example_over_rest_waits_redoes_with_a_new_prompt_then_goes_on_once_the_prefect_ui_approves(
        ) -> None:
    story = (ROOT / "examples" / "pipelines" / "story.yaml").read_text(encoding="utf-8")
    idea = f"a lighthouse at dusk, rest {uuid.uuid4().hex[:6]}"
    with serve_api() as served:
        pipeline_id = _stored(served.url, {"definition": story})
        made = httpx.post(f"{served.url}/api/pipelines/{pipeline_id}/runs", json={"inputs": {"idea": idea}},
                          headers=auth_headers())
        assert made.status_code == 201, made.text
        run_id = made.json()["run_id"]
        graph = _graph_when(served.url, run_id, lambda g: g["status"] == "waiting")
        assert _states(graph, "look") == ["waiting"] and _states(graph, "keyframe") == ["completed"]
        assert _started(graph, "shots", "film") == [], "nothing after the approval starts before the answer"

        redo = httpx.post(f"{served.url}/api/runs/{run_id}/steps/look/approve",
                          json={"decision": "redo", "prompt": "the same lighthouse at dawn"}, headers=auth_headers())
        assert redo.status_code == 200, redo.text
        graph = _graph_when(served.url, run_id, lambda g: _states(g, "look")[-1:] == ["waiting"]
                            and len(_states(g, "look")) == 2)
        assert _states(graph, "keyframe") == ["completed", "completed"], "the keyframe rendered again"
        assert _started(graph, "shots", "film") == []

        flow_run_id = graph["prefect_flow_run_id"]
        wait_until(lambda: _paused(flow_run_id), 60, "the Prefect UI to show the run Paused with its form")
        resume_flow_run(UUID(flow_run_id), run_input={"decision": "approve", "note": "the dawn one"})
        graph = _graph_when(served.url, run_id, lambda g: g["status"] in ("completed", "failed", "cancelled"))
    assert graph["status"] == "completed", graph["error"]
    assert [s["name"] for s in graph["steps"] if s["pipeline_step"] == "shots"] == ["shots[0]", "shots[1]",
                                                                                    "shots[2]"]
    assert _states(graph, "film") == ["completed"]
    answers = [(e.data["decision"], e.data["via"]) for e in repo.events_after(run_id)
               if e.kind == "approval" and e.data and e.data.get("received")]
    assert answers == [("redo", "api"), ("approve", "prefect-ui")]
    keys = store_rows("SELECT idempotency_key FROM steps WHERE run_id = ? AND name = 'keyframe' ORDER BY id", run_id)
    assert len({k for (k,) in keys}) == 2, "the redo rendered the keyframe from other inputs (the new prompt)"
    questions = [e.data["subject_url"] for e in repo.events_after(run_id) if e.kind == "approval"
                 and e.data and e.data.get("question")]
    assert len(questions) == 2 and questions[0] != questions[1], "each round links the image it asks about"


def _paused(flow_run_id: str) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(flow_run_id)).state
    return bool(state and state.is_paused())


def _graph_when(base: str, run_id: str, ready) -> dict:
    def check() -> dict | None:
        graph = httpx.get(f"{base}/api/runs/{run_id}", headers=auth_headers()).json()
        return graph if ready(graph) else None

    return wait_until(check, 180, f"run {run_id} in the expected state")


def _states(graph: dict, name: str) -> list[str]:
    return [s["status"] for s in graph["steps"] if s["name"] == name]


def _started(graph: dict, *pipeline_steps: str) -> list[str]:
    return [s["name"] for s in graph["steps"] if s["pipeline_step"] in pipeline_steps
            and s["status"] not in ("pending", "skipped")]


SUBMIT_SCRIPT = """
import sys
import reelflow

print(reelflow.submit_pipeline(sys.argv[1], {"idea": sys.argv[2]}), flush=True)
"""


def test_a_script_submitting_a_pipeline_while_a_worker_is_online_runs_it_as_a_pipeline_run_deployment_run(
        tmp_path: Path) -> None:
    definition = tmp_path / "clip.yaml"
    definition.write_text(yaml.safe_dump(_definition(f"dispatch-{uuid.uuid4().hex[:6]}")))
    idea = f"on a worker, {uuid.uuid4().hex[:6]}"
    with one_worker(tmp_path) as worker:
        submitted = subprocess.run([sys.executable, "-c", SUBMIT_SCRIPT, str(definition), idea], cwd=ROOT,
                                   capture_output=True, text=True, timeout=180, check=False)
        assert submitted.returncode == 0, submitted.stderr[-3000:]
        run_id = submitted.stdout.strip().splitlines()[-1]
        wait_until(lambda: repo.get_run(run_id).status in repo.FINISHED, 180, f"run {run_id} on the worker")
    run = repo.get_run(run_id)
    assert run.status == "completed", run.error
    flow_run = read_flow_run(run.prefect_flow_run_id)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(flow_run.deployment_id)
        flow_name = client.read_flow(deployment.flow_id).name
    assert f"{flow_name}/{deployment.name}" == PIPELINE_DEPLOYMENT
    assert (flow_run.labels or {}).get("prefect.worker.name") == worker.worker_name
    assert flow_run.state is not None and flow_run.state.type.value == "COMPLETED"
