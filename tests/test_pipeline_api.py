"""``/api/pipelines`` stores checked definitions with versions; bad definitions are 422 naming the step and
field with nothing stored; spec-saved (and pre-graph) pipelines read as one-step pipelines; prices come from
``POST /api/pipelines/estimate``; ``reelflow pipeline list`` shows what the API stored."""

from __future__ import annotations

import copy
import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from reelflow.core.pipeline.check import check_definition
from reelflow.core.pipeline.load import load_definition
from reelflow.store import pipelines
from tests.support.cli import run_cli
from tests.support.web_api import error_of
from tests.test_pipeline_definition import STORY, STORY_YAML


def named(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    definition = copy.deepcopy(data or STORY)
    definition["name"] = name
    return definition


def _versions(home: Path, pipeline_id: str) -> list[int]:
    with sqlite3.connect(home / "reelflow.db") as conn:
        rows = conn.execute("SELECT version FROM pipeline_versions WHERE pipeline_id = ? ORDER BY version",
                            (pipeline_id,)).fetchall()
    return [v for (v,) in rows]


def test_definitions_are_stored_with_a_version_per_change(client: httpx.Client, home: Path) -> None:
    created = client.post("/api/pipelines", json={"definition": named("story one")})
    assert created.status_code == 201, created.text
    body = created.json()
    pid = body["pipeline_id"]
    assert (body["name"], body["version"], body["saved_as"], body["spec"]) == ("story one", 1, "definition", {})
    assert [s["id"] for s in body["definition"]["steps"]] == ["keyframe", "look", "shots", "film"]
    assert load_definition(body["definition"]) == load_definition(named("story one"))

    same = client.put(f"/api/pipelines/{pid}", json={"definition": named("story one")})
    assert same.status_code == 200 and same.json()["version"] == 1  # nothing changed: no new version
    edited = named("story one")
    edited["steps"][2]["params"] = {"duration": 3}
    changed = client.put(f"/api/pipelines/{pid}", json={"definition": edited})
    assert changed.status_code == 200 and changed.json()["version"] == 2, changed.text
    as_yaml = STORY_YAML.replace("name: story", "name: story one").replace("duration: 2", "duration: 4")
    from_yaml = client.put(f"/api/pipelines/{pid}", content=as_yaml, headers={"Content-Type": "application/yaml"})
    assert from_yaml.status_code == 200 and from_yaml.json()["version"] == 3, from_yaml.text

    def duration(response: httpx.Response) -> float:
        return response.json()["definition"]["steps"][2]["params"]["duration"]

    assert duration(client.get(f"/api/pipelines/{pid}")) == 4
    assert duration(client.get(f"/api/pipelines/{pid}", params={"version": 1})) == 2
    assert duration(client.get(f"/api/pipelines/{pid}", params={"version": 2})) == 3
    assert _versions(home, pid) == [1, 2, 3]
    field, message = error_of(client.get(f"/api/pipelines/{pid}", params={"version": 9}), 422)
    assert field == "version" and "has no version 9; it is at version 3" in message
    spec = {"model": "local-kenburns", "prompt": "p"}
    field, message = error_of(client.put(f"/api/pipelines/{pid}", json={"name": "x", "spec": spec}), 422)
    assert field == "spec" and "is a graph of steps; replace it with a 'definition'" in message
    assert client.get(f"/api/pipelines/{pid}").json()["name"] == "story one"
    renamed = client.put(f"/api/pipelines/{pid}", json={"name": "story renamed"})
    assert (renamed.json()["name"], renamed.json()["version"]) == ("story renamed", 3)

    text = client.post("/api/pipelines", json={"name": "story from text", "definition": STORY_YAML})
    assert text.status_code == 201 and text.json()["name"] == "story from text", text.text

    assert client.delete(f"/api/pipelines/{pid}").status_code == 204
    assert _versions(home, pid) == []
    error_of(client.get(f"/api/pipelines/{pid}"), 404)


@pytest.mark.parametrize(("change", "loc", "words"), [
    (lambda d: d["steps"][2].update(model="no-such-model"), ["steps", "shots", "model"],
     "unknown video model (i2v/t2v)"),
    (lambda d: d["steps"][2].update(params={"duration": 99}), ["steps", "shots", "params", "duration"],
     "out of range"),
    (lambda d: d["steps"][3].update(videos=["$keyframe.image"]), ["steps", "film", "videos"], "is an image"),
    (lambda d: d["steps"][0].update(prompt="$inputs.nope"), ["steps", "keyframe", "prompt"], "names no input"),
    (lambda d: d["steps"][1].update(target="film"), ["steps", "look", "target"], "cycle: look -> film"),
    (lambda d: d["steps"][0].update(kind="paint"), ["steps", "keyframe", "kind"], "is not a step kind"),
    (lambda d: d.update(inputs={"idea": {"type": "colour"}}), ["inputs", "idea", "type"], "Input should be"),
])
def test_bad_definitions_are_422_naming_step_and_field_and_store_nothing(client: httpx.Client, change: Any,
                                                                          loc: list[str], words: str) -> None:
    before = client.get("/api/pipelines").json()["total"]
    definition = named(f"bad {uuid.uuid4().hex[:8]}")
    change(definition)
    for response in (client.post("/api/pipelines", json={"definition": definition}),
                     client.post("/api/pipelines", content=yaml.safe_dump(definition),
                                 headers={"Content-Type": "application/yaml"}),
                     client.post("/api/pipelines/estimate", json={"definition": definition})):
        field, message = error_of(response, 422)
        detail = response.json()["detail"]
        assert detail[0]["loc"] == loc and words in detail[0]["msg"], detail
        assert field == ".".join(loc) and words in message
    assert client.get("/api/pipelines").json()["total"] == before


def test_a_definition_naming_a_server_file_is_not_read(client: httpx.Client, tmp_path: Path) -> None:
    file = tmp_path / "story.yaml"
    file.write_text(STORY_YAML, encoding="utf-8")
    field, message = error_of(client.post("/api/pipelines", json={"definition": str(file)}), 422)
    assert field == "definition" and "must be a mapping with name, inputs and steps; got str" in message


def test_requests_without_a_definition_say_how_to_send_one(client: httpx.Client) -> None:
    field, message = error_of(client.post("/api/pipelines", json={"name": "p"}), 422)
    assert field == "definition" and "JSON object or YAML text" in message and "'spec'" in message
    field, message = error_of(client.post("/api/pipelines", json={"definition": STORY, "spec": {}}), 422)
    assert field == "definition" and "not both" in message
    field, message = error_of(client.post("/api/pipelines", content="x", headers={"Content-Type": "image/png"}),
                              422)
    assert field == "content-type" and "application/yaml" in message
    field, message = error_of(client.post("/api/pipelines", content="steps: [", headers={
        "Content-Type": "application/yaml"}), 422)
    assert field == "definition" and "is not valid YAML or JSON at line 1" in message


def test_the_panels_spec_requests_still_work_and_read_as_one_step_pipelines(client: httpx.Client) -> None:
    spec = {"model": "local-kenburns", "prompt": "slow zoom", "duration": 1.0, "fps": 8, "resolution": "128x96"}
    created = client.post("/api/pipelines", json={"name": "tiny zoom (panel)", "spec": spec})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["spec"], body["saved_as"], body["version"]) == (spec, "spec", 1)
    assert body["definition"] == {
        "name": "tiny zoom -panel", "inputs": {"image": {"type": "image", "required": True,
                                                         "description": "The start image: a path or an http(s) URL."}},
        "steps": [{"id": "video", "kind": "image_to_video", "model": "local-kenburns", "image": "$inputs.image",
                   "prompt": "slow zoom", "params": {"duration": 1.0, "fps": 8, "resolution": "128x96"}}]}
    check_definition(load_definition(body["definition"]))
    edited = client.put(f"/api/pipelines/{body['pipeline_id']}", json={"spec": {**spec, "seed": 4}})
    assert edited.json()["version"] == 2 and edited.json()["definition"]["steps"][0]["params"]["seed"] == 4


def test_a_pipeline_saved_before_definitions_reads_as_one_step_pipeline(client: httpx.Client, home: Path) -> None:
    """A row as the previous code wrote it: only ``spec`` (with an image step), no definition, no versions."""
    pipelines.list_pipelines()  # the store exists
    pid = uuid.uuid4().hex
    spec = {"model": "local-kenburns", "image_prompt": "$5 lighthouse", "image_model": "flux-dev",
            "prompt": "the beam turns", "seed": 7}
    with sqlite3.connect(home / "reelflow.db") as conn:
        conn.execute("INSERT INTO pipelines (id, name, spec, created_at, updated_at) VALUES (?, ?, ?, "
                     "'2026-01-01 00:00:00', '2026-01-01 00:00:00')", (pid, "old lighthouse", json.dumps(spec)))
    got = client.get(f"/api/pipelines/{pid}").json()
    assert (got["version"], got["saved_as"], got["spec"]) == (1, "spec", spec)
    definition = load_definition(got["definition"])
    check_definition(definition)
    image, video = definition.steps
    assert (image.kind, image.model, image.prompt) == ("generate_image", "flux-dev", "$$5 lighthouse")
    assert (video.kind, video.model, video.image, video.prompt, video.params) == (
        "image_to_video", "local-kenburns", "$image.image", "the beam turns", {"seed": 7})
    assert definition.inputs == {}
    priced = client.post("/api/pipelines/estimate", json={"pipeline_id": pid}).json()
    assert priced["total_usd"] == "0.025"  # flux-dev: one megapixel at $0.025; local-kenburns is free


def test_estimate_prices_a_definition_or_a_stored_pipeline(client: httpx.Client) -> None:
    kling = named("kling story")
    kling["steps"][2].update(model="kling-2.1-master-i2v", params={"duration": 5})
    priced = client.post("/api/pipelines/estimate", json={"definition": kling, "inputs": {"shots": "a|b"}})
    assert priced.status_code == 200, priced.text
    body = priced.json()
    assert body["total_usd"] == "2.803" and body["unknown"] == []
    assert {s["step"]: (s["count"], s["usd"]) for s in body["steps"]}["shots"] == (2, "2.8")
    stored = client.post("/api/pipelines", json={"definition": kling}).json()
    by_id = client.post("/api/pipelines/estimate", json={"pipeline_id": stored["pipeline_id"], "version": 1})
    assert by_id.json()["total_usd"] == "4.203"  # the default three shots
    gpu = named("gpu story")
    gpu["steps"][2].update(model="wan-2.2-i2v-comfyui", prompt="$item", params={})
    unknown = client.post("/api/pipelines/estimate", json={"definition": gpu}).json()
    assert unknown["total_usd"] is None and unknown["unknown"] == ["shots"]
    field, message = error_of(client.post("/api/pipelines/estimate", json={"definition": kling,
                                                                          "inputs": {"colour": "red"}}), 422)
    assert field == "inputs.colour" and "allowed: idea, shots" in message
    error_of(client.post("/api/pipelines/estimate", json={"pipeline_id": "nope"}), 404)


def test_pipeline_list_cli_shows_what_the_api_stored(client: httpx.Client) -> None:
    stored = client.post("/api/pipelines", json={"definition": named("listed story")}).json()
    done = run_cli("pipeline", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = {p["pipeline_id"]: p for p in json.loads(done.stdout)["pipelines"]}
    assert listed[stored["pipeline_id"]]["name"] == "listed story"
    assert listed[stored["pipeline_id"]]["version"] == 1
    done = run_cli("pipeline", "list")
    assert done.returncode == 0 and "listed story" in done.stdout, done.stdout


def test_openapi_documents_the_json_and_yaml_bodies(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/pipelines"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml"}
    assert {"name", "definition", "spec"} <= set(body["application/json"]["schema"]["properties"])
    refs = {ref.removeprefix("#/components/schemas/") for ref in _refs(schema)}
    assert refs <= set(schema["components"]["schemas"]), refs - set(schema["components"]["schemas"])


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_a_graph_pipeline_is_not_run_as_a_one_video_spec(client: httpx.Client) -> None:
    stored = client.post("/api/pipelines", json={"definition": named("graph only")}).json()
    field, message = error_of(client.post("/api/runs", json={"pipeline_id": stored["pipeline_id"]}), 422)
    assert field == "pipeline_id" and f"POST /api/pipelines/{stored['pipeline_id']}/runs" in message
