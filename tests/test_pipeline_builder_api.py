"""What the panel's pipeline builder asks of the REST API, on the app under uvicorn: the palette of step kinds, the
check of a definition without saving (every error on its step and field, YAML <-> JSON, the estimate, warnings for
unavailable models), a run's step graph, and resuming a failed pipeline run from its failed step."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from reelflow.runs.pipelines import describe_steps
from reelflow.store import repo
from tests.support.pipeline_defs import keyframe_look_clip
from tests.support.polling import wait_until
from tests.support.store import store_value
from tests.support.web_api import error_of

STORY = keyframe_look_clip("a lighthouse at dusk", name="story-builder")


def test_the_palette_lists_every_step_kind_with_its_typed_fields_and_the_models_it_takes(
        client: httpx.Client) -> None:
    palette = client.get("/api/pipelines/palette").json()
    kinds = {k["kind"]: k for k in palette["kinds"]}
    assert set(kinds) == {"generate_image", "edit_image", "enhance_prompt", "image_to_video", "extend", "concat",
                          "comfyui", "approve"}
    video = kinds["image_to_video"]
    fields = {f["name"]: f for f in video["fields"]}
    assert fields["image"]["type"] == "image" and not fields["image"]["required"]
    assert fields["model"]["required"] and video["outputs"] == {"video": "video"}
    assert "duration" in video["params"] and "local-kenburns" in video["models"]
    assert "flux-schnell" not in video["models"] and "flux-schnell" in kinds["generate_image"]["models"]
    assert {f["name"]: f["list"] for f in kinds["concat"]["fields"]}["videos"] is True
    templates = {t["name"]: t["yaml"] for t in palette["templates"]}
    assert "kind: approve" in templates["story"] and {"edit-then-animate", "long-take"} <= set(templates)
    assert set(palette["input_types"]) == {"text", "texts", "image", "number", "choice"}
    models = {m["id"]: m for m in palette["models"]}
    assert models["local-kenburns"]["available"] is True
    fal = models["wan-2.5-i2v"]
    assert fal["available"] is False and any("FAL_KEY" in why for why in fal["missing"])


def test_check_returns_every_error_on_its_step_and_field_without_saving(client: httpx.Client) -> None:
    before = store_value("SELECT count(*) FROM pipelines")
    broken = {**STORY, "steps": [
        {**STORY["steps"][0], "model": "local-kenburns"},  # a video model in an image step
        STORY["steps"][1],
        {**STORY["steps"][2], "params": {"frames": 6, "fps": 6, "resolution": "128x96", "colour": "red"}},
        {"id": "film", "kind": "concat", "videos": ["$nowhere.video"]},
    ]}
    checked = client.post("/api/pipelines/check", json={"definition": broken})
    field, message = error_of(checked, 422)
    assert "is a video model (i2v)" in message
    body = checked.json()
    assert field == "steps.keyframe.model" and body["detail"][0]["loc"] == ["steps", "keyframe", "model"]
    assert len(body["detail"]) == len(body["errors"]) == 3
    assert body["valid"] is False and body["estimate"] is None
    where = {(e["step"], e["field"]) for e in body["errors"]}
    assert where == {("keyframe", "model"), ("clip", "params.colour"), ("film", "videos")}, body["errors"]
    model_error = next(e for e in body["errors"] if e["step"] == "keyframe")
    assert "allowed:" in model_error["message"] and "local-procedural-image" in model_error["message"]
    structure = client.post("/api/pipelines/check", json={"definition": {**STORY, "steps": [
        {"id": "Bad", "kind": "generate_image"}, {"id": "two", "kind": "teleport"}]}}).json()
    assert {(e["step"], e["field"]) for e in structure["errors"]} >= {("Bad", "id"), ("two", "kind")}
    assert store_value("SELECT count(*) FROM pipelines") == before, "a check saves nothing"


def test_check_turns_json_into_yaml_and_yaml_into_json_with_the_estimate(client: httpx.Client) -> None:
    from_json = client.post("/api/pipelines/check", json={"definition": STORY}).json()
    assert from_json["valid"] is True and from_json["errors"] == [], from_json
    assert yaml.safe_load(from_json["yaml"]) == from_json["definition"]
    assert from_json["definition"]["steps"][2]["image"] == "$look.image"
    text = from_json["yaml"].replace("a lighthouse at dusk", "a harbour at dawn")
    from_yaml = client.post("/api/pipelines/check", content=text, headers={"Content-Type": "application/yaml"}).json()
    assert from_yaml["valid"] is True and from_yaml["yaml"] == text
    assert from_yaml["definition"]["inputs"]["idea"]["default"] == "a harbour at dawn"
    estimate = from_yaml["estimate"]
    assert [s["step"] for s in estimate["steps"]] == ["keyframe", "look", "clip"]
    assert estimate["total_usd"] == "0" and estimate["unknown"] == []
    bad_yaml = client.post("/api/pipelines/check", json={"definition": "name: x\nsteps: [\n"})
    assert bad_yaml.status_code == 422
    bad_yaml = bad_yaml.json()
    assert bad_yaml["valid"] is False and bad_yaml["errors"][0]["field"] == "definition"
    assert "line" in bad_yaml["errors"][0]["message"]
    error_of(client.post("/api/pipelines/check", json={"definition": STORY, "extra": 1}), 422)


def test_a_saved_pipeline_with_an_unavailable_model_says_so(client: httpx.Client) -> None:
    fal = {**STORY, "name": f"fal-{uuid.uuid4().hex[:6]}", "steps": [
        {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea"}]}
    checked = client.post("/api/pipelines/check", json={"definition": fal}).json()
    assert checked["valid"] is True
    assert [(w["step"], w["field"]) for w in checked["warnings"]] == [("keyframe", "model")]
    assert "FAL_KEY" in checked["warnings"][0]["message"]
    saved = client.post("/api/pipelines", json={"definition": fal})
    assert saved.status_code == 201 and saved.json()["warnings"] == checked["warnings"]
    listed = client.get("/api/pipelines").json()["pipelines"]
    assert next(p for p in listed if p["pipeline_id"] == saved.json()["pipeline_id"])["warnings"]
    local = client.post("/api/pipelines", json={"definition": {**STORY, "name": f"ok-{uuid.uuid4().hex[:6]}"}})
    assert local.json()["warnings"] == []


def _graph_when(client: httpx.Client, run_id: str, done: Callable[[dict[str, Any]], bool], what: str
                ) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        graph = client.get(f"/api/runs/{run_id}/graph").json()
        return graph if done(graph) else None

    return wait_until(ready, 120, what)


def _states(graph: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["status"] for s in graph["steps"]}


def test_a_failed_pipeline_run_resumes_from_its_failed_step(client: httpx.Client) -> None:
    pipeline_id = client.post("/api/pipelines", json={"definition": {**STORY, "name": f"resume-{uuid.uuid4().hex[:6]}"}}
                              ).json()["pipeline_id"]
    run_id = client.post(f"/api/pipelines/{pipeline_id}/runs", json={}).json()["run_id"]
    waiting = _graph_when(client, run_id, lambda g: _states(g)["look"] == "waiting", "the approval to wait")
    keyframe = waiting["steps"][0]["items"][0]["outputs"]["image"]
    assert keyframe["url"].startswith("/api/media/") and "path" not in keyframe, "a browser URL, no server path"
    assert client.get(keyframe["url"]).status_code == 200
    stored = Path(describe_steps(repo.get_run(run_id))[0]["items"][0]["outputs"]["image"]["path"])
    kept = stored.read_bytes()
    stored.unlink()  # the clip step then fails reading its image
    assert client.post(f"/api/runs/{run_id}/steps/look/approve", json={"decision": "approve"}).status_code == 200
    failed = _graph_when(client, run_id, lambda g: g["run"]["status"] in ("completed", "failed", "cancelled"),
                         "the run to end")
    assert failed["run"]["status"] == "failed" and _states(failed) == {
        "keyframe": "completed", "look": "completed", "clip": "failed"}, failed["steps"]
    rendered = store_value("SELECT count(*) FROM steps WHERE run_id = ? AND name = 'keyframe'", run_id)
    error_of(client.post(f"/api/runs/{run_id}/resume", headers={"Authorization": "Bearer x"}), 401)

    stored.write_bytes(kept)
    resumed = client.post(f"/api/runs/{run_id[:8]}/resume")
    assert resumed.status_code == 200 and resumed.json()["run_id"] == run_id, resumed.text
    done = _graph_when(client, run_id, lambda g: g["run"]["status"] in ("completed", "failed", "cancelled"),
                       "the resumed run to end")
    assert done["run"]["status"] == "completed", done["steps"]
    assert store_value("SELECT count(*) FROM steps WHERE run_id = ? AND name = 'keyframe'", run_id) == rendered, \
        "the completed step is kept, not rendered again"
    assert done["final_outputs"]["video"]["url"].startswith("/api/media/")
    field, message = error_of(client.post(f"/api/runs/{run_id}/resume"), 409)
    assert field == "run_id" and "is completed" in message
    upload = client.post("/api/uploads", files={"file": ("keyframe.png", kept, "image/png")}).json()
    video = client.post("/api/runs", json={"model": "local-kenburns", "image": upload["image"], "frames": 4,
                                           "fps": 4, "resolution": "128x96"})
    assert video.status_code == 201, video.text
    field, message = error_of(client.post(f"/api/runs/{video.json()['run_id']}/resume"), 409)
    assert field == "run_id" and "one-video run" in message
    error_of(client.post(f"/api/runs/{'f' * 12}/resume"), 404)
