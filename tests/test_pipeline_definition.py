"""Pipeline definitions: loading, checking, the step graph, inputs; every validation error through the CLI
(``reelflow pipeline validate``) exits 2 naming the step and field, and records nothing."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelflow.core.pipeline import graph
from reelflow.core.pipeline.check import check_definition, resolve_inputs
from reelflow.core.pipeline.load import load_definition
from reelflow.errors import PipelineDefinitionError
from tests.support.cli import run_cli

STORY: dict[str, Any] = {
    "name": "story",
    "description": "A keyframe a person approves, animated as three shots, joined with crossfades.",
    "inputs": {
        "idea": {"type": "text", "default": "a lighthouse on a cliff at dusk, cinematic"},
        "shots": {"type": "texts", "default": ["waves crash below", "the beam sweeps the sea", "a gull"]},
    },
    "steps": [
        {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea"},
        {"id": "look", "kind": "approve", "target": "keyframe", "timeout": 3600},
        {"id": "shots", "kind": "image_to_video", "model": "local-kenburns", "for_each": "$inputs.shots",
         "image": "$look.image", "prompt": ["$inputs.idea", ", ", "$item"], "params": {"duration": 2}},
        {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.5}},
    ],
}
STORY_YAML = """\
name: story
inputs:
  idea: {type: text, default: "a lighthouse on a cliff at dusk, cinematic"}
  shots: {type: texts, default: ["waves crash below", "the beam sweeps the sea", "a gull crosses the light"]}
steps:
  - {id: keyframe, kind: generate_image, model: flux-schnell, prompt: $inputs.idea}
  - {id: look, kind: approve, target: keyframe, timeout: 3600}
  - {id: shots, kind: image_to_video, model: local-kenburns, for_each: $inputs.shots, image: $look.image,
     prompt: [$inputs.idea, ", ", $item], params: {duration: 2}}
  - {id: film, kind: concat, videos: [$shots.video], params: {crossfade: 0.5}}
"""


def story(change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    data = copy.deepcopy(STORY)
    if change:
        change(data)
    return data


def step(data: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in data["steps"] if s["id"] == step_id)


def setting(step_id: str, **fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: step(data, step_id).update(fields)


def adding(**fields: Any) -> Callable[[dict[str, Any]], None]:
    return lambda data: data["steps"].append(fields)


def cycle(data: dict[str, Any]) -> None:
    data["steps"] += [{"id": "a", "kind": "extend", "model": "local-kenburns", "video": "$b.video"},
                      {"id": "b", "kind": "extend", "model": "local-kenburns", "video": "$a.video"}]


# name: (change, step, field, words the message must hold)
ERRORS: dict[str, tuple[Callable[[dict[str, Any]], None], str | None, str, str]] = {
    "unknown kind": (setting("keyframe", kind="paint"), "keyframe", "kind", "'paint' is not a step kind"),
    "unknown model": (setting("shots", model="no-such-model"), "shots", "model", "unknown i2v/t2v model"),
    "model of the wrong kind": (setting("keyframe", model="local-kenburns"), "keyframe", "model",
                                "'local-kenburns' is a i2v model"),
    "missing input": (setting("keyframe", prompt="$inputs.nope"), "keyframe", "prompt", "names no input"),
    "missing step": (setting("shots", image="$nosuch.image"), "shots", "image", "names no step"),
    "missing output": (setting("shots", image="$keyframe.video"), "shots", "image", "has no output 'video'"),
    "cycle": (cycle, "a", "video", "the steps form a cycle: a -> b -> a"),
    "video into an image input": (adding(id="more", kind="image_to_video", model="local-kenburns",
                                         image="$film.video"), "more", "image", "is a video; image takes an image"),
    "image into concat": (setting("film", videos=["$keyframe.image"]), "film", "videos", "is an image"),
    "list into one image": (adding(id="more", kind="extend", model="local-kenburns", video="$shots.video"),
                            "more", "video", "take one item ($shots[0].video)"),
    "index of a single step": (setting("shots", image="$keyframe[0].image"), "shots", "image",
                               "makes one item, not a list"),
    "for_each not over a list": (setting("shots", for_each="$inputs.idea"), "shots", "for_each", "not a list"),
    "$item outside for_each": (setting("keyframe", prompt="$item"), "keyframe", "prompt",
                               "only meaningful in a step with for_each"),
    "not a reference": (setting("shots", image="/tmp/x.png"), "shots", "image", "is not a reference"),
    "out-of-range duration": (setting("shots", params={"duration": 99}), "shots", "params.duration",
                              "99 s is out of range; allowed 0.5-30 s"),
    "out-of-range fps": (setting("shots", params={"fps": 500}), "shots", "params.fps", "allowed 1-60"),
    "resolution not offered": (setting("shots", model="wan-2.5-i2v", params={"resolution": "4k"}), "shots",
                               "params.resolution", "choose one of"),
    "duration not offered": (setting("shots", model="wan-2.5-i2v", params={"duration": 7}), "shots",
                             "params.duration", "choose one of: 5, 10"),
    "image size out of range": (setting("keyframe", params={"resolution": "9000x9000"}), "keyframe",
                                "params.resolution", "out of range"),
    "unknown param": (setting("shots", params={"colour": "red"}), "shots", "params.colour",
                      "allowed: duration, frames, fps, resolution, seed"),
    "crossfade out of range": (setting("film", params={"crossfade": -1}), "film", "params.crossfade",
                               "out of range; allowed 0-10 seconds"),
    "approve of a missing step": (setting("look", target="nope"), "look", "target", "'nope' is not a step"),
    "concat of no videos": (setting("film", videos=[]), "film", "videos", "is required for a concat step"),
    "field a kind does not use": (setting("film", model="flux-dev"), "film", "model",
                                  "is not used by a concat step"),
    "unknown field": (setting("keyframe", colour="red"), "keyframe", "colour", "is not a known field"),
    "bad step id": (setting("film", id="Film!"), "Film!", "id", "lowercase letters"),
    "duplicate step id": (setting("film", id="shots"), "shots", "id", "more than one step"),
    "bad input default": (lambda d: d["inputs"].update(n={"type": "number", "default": "many"}), None,
                          "inputs.n.default", "'many' is not a number"),
    "empty prompt": (setting("keyframe", prompt=" "), "keyframe", "prompt", "must not be empty"),
}


def _field_of(exc: PipelineDefinitionError) -> str:
    return exc.field


@pytest.mark.parametrize("case", list(ERRORS))
def test_check_names_the_step_and_field(case: str) -> None:
    change, step_id, field, words = ERRORS[case]
    with pytest.raises(PipelineDefinitionError) as caught:
        check_definition(load_definition(story(change)))
    assert (caught.value.step, caught.value.step_field) == (step_id, field), str(caught.value)
    assert words in caught.value.message


def _run_count(home: Path) -> int:
    db = home / "reelflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize("case", ["cycle", "missing input", "missing output", "video into an image input",
                                  "unknown model", "unknown kind", "out-of-range duration", "unknown param",
                                  "for_each not over a list", "approve of a missing step", "concat of no videos",
                                  "bad input default"])
def test_validate_cli_exits_2_naming_step_and_field(case: str, tmp_path: Path, home: Path) -> None:
    change, step_id, field, words = ERRORS[case]
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(story(change), sort_keys=False), encoding="utf-8")
    before = _run_count(home)
    done = run_cli("pipeline", "validate", str(file))
    assert done.returncode == 2, done.stdout + done.stderr
    where = f"steps.{step_id}.{field}:" if step_id else f"{field}:"
    message = " ".join(done.stderr.split())
    assert where in message and words in message, message
    assert "Traceback" not in done.stderr
    assert _run_count(home) == before


def test_validate_cli_accepts_the_story_with_a_summary(tmp_path: Path) -> None:
    file = tmp_path / "story.yaml"
    file.write_text(STORY_YAML, encoding="utf-8")
    done = run_cli("pipeline", "validate", str(file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("story: valid, 4 steps: keyframe -> look -> shots ×3 (for_each $inputs.shots) "
                                   "-> film")


def test_validate_cli_reports_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: story\nsteps: [ {id: a\n", encoding="utf-8")
    done = run_cli("pipeline", "validate", str(broken))
    assert done.returncode == 2 and "definition: is not valid YAML or JSON at line" in done.stderr, done.stderr
    done = run_cli("pipeline", "validate", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr


def test_schema_cli_prints_the_json_schema_with_descriptions() -> None:
    done = run_cli("pipeline", "schema")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    step_def = schema["$defs"]["StepDef"]
    assert "for_each" in step_def["properties"] and step_def["additionalProperties"] is False
    assert "Fan out over a list" in step_def["properties"]["for_each"]["description"]
    kinds = step_def["properties"]["kind"]["enum"]
    assert set(kinds) == {"generate_image", "edit_image", "enhance_prompt", "image_to_video", "extend", "concat",
                          "comfyui", "approve"}


def test_yaml_text_json_text_file_and_mapping_load_the_same(tmp_path: Path) -> None:
    file = tmp_path / "story.yml"
    file.write_text(STORY_YAML, encoding="utf-8")
    from_yaml = load_definition(STORY_YAML)
    assert load_definition(file) == from_yaml == load_definition(str(file))
    assert load_definition(json.dumps(from_yaml.model_dump(exclude_none=True))) == from_yaml
    assert load_definition(from_yaml.model_dump()) == from_yaml


def test_the_graph_of_the_story() -> None:
    definition = load_definition(STORY_YAML)
    check_definition(definition)
    assert graph.step_dependencies(definition) == {"keyframe": set(), "look": {"keyframe"}, "shots": {"look"},
                                                   "film": {"shots"}}
    assert graph.topological_order(definition) == ["keyframe", "look", "shots", "film"]
    assert graph.value_type(definition, "$look.image") == "image"
    assert graph.value_of(definition, "$shots.video") == graph.Value("video", many=True)
    assert graph.value_of(definition, "$shots[1].video") == graph.Value("video")
    assert graph.value_type(definition, "$item", "shots") == "text"
    assert [graph.is_fan_out(definition, s) for s in ("keyframe", "look", "shots", "film")] == [False] * 2 + [
        True, False]
    assert graph.fan_out_size(definition, "shots", {"shots": ["a", "b"]}) == 2
    assert graph.fan_out_size(definition, "film", {"shots": ["a"]}) is None


def test_steps_written_out_of_order_run_in_dependency_order() -> None:
    data = story(lambda d: d["steps"].reverse())
    definition = load_definition(data)
    check_definition(definition)
    assert graph.topological_order(definition) == ["keyframe", "look", "shots", "film"]


def test_variants_and_extend_fan_out_with_known_sizes() -> None:
    data = story(lambda d: (setting("keyframe", variants=3)(d), setting("look", target="keyframe")(d),
                            setting("shots", for_each=None, image="$look[2].image", prompt="$inputs.idea")(d),
                            adding(id="longer", kind="extend", model="local-kenburns", video="$shots.video",
                                   times=2)(d),
                            setting("film", videos=["$shots.video", "$longer.video"])(d)))
    definition = load_definition(data)
    check_definition(definition)
    assert graph.fan_out_size(definition, "look", {}) == 3
    assert graph.fan_out_size(definition, "longer", {}) == 2
    with pytest.raises(PipelineDefinitionError, match=r"makes 3 items; allowed \[0\]-\[2\]"):
        check_definition(load_definition(story(lambda d: (setting("keyframe", variants=3)(d), setting(
            "shots", for_each=None, image="$look[3].image", prompt="x")(d)))))


def test_resolve_inputs_converts_defaults_and_refuses_unknown_or_missing() -> None:
    data = story(lambda d: d["inputs"].update(
        strength={"type": "number", "min": 0, "max": 1, "default": 0.5},
        look={"type": "choice", "choices": ["warm", "cold"], "default": "warm"},
        photo={"type": "image", "required": True}))
    definition = load_definition(data)
    check_definition(definition)
    resolved = resolve_inputs(definition, {"shots": "one|two", "strength": "0.25", "photo": "/tmp/p.png"})
    assert resolved == {"idea": STORY["inputs"]["idea"]["default"], "shots": ["one", "two"], "strength": 0.25,
                        "look": "warm", "photo": "/tmp/p.png"}
    assert resolve_inputs(definition, {"shots": '["a|b", "c"]', "photo": "p"})["shots"] == ["a|b", "c"]
    problems = {"unknown": ({"photo": "p", "colour": "red"}, "inputs.colour", "is not an input"),
                "missing": ({}, "inputs.photo", "is required"),
                "range": ({"photo": "p", "strength": "2"}, "inputs.strength", "out of range; allowed 0 to 1"),
                "choice": ({"photo": "p", "look": "pink"}, "inputs.look", "allowed: warm, cold")}
    for given, field, words in problems.values():
        with pytest.raises(PipelineDefinitionError) as caught:
            resolve_inputs(definition, given)
        assert caught.value.field == field and words in caught.value.message


def _priced(data: dict[str, Any], tmp_path: Path, *args: str) -> dict[str, Any]:
    file = tmp_path / "priced.yaml"
    file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    done = run_cli("pipeline", "estimate", str(file), "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_estimate_counts_fan_out_in_exact_dollars(tmp_path: Path) -> None:
    kling = story(setting("shots", model="kling-2.1-master-i2v", params={"duration": 10}))
    found = _priced(kling, tmp_path, "--input", "shots=a|b|c|d")
    by_step = {s["step"]: s for s in found["steps"]}
    # Kling 2.1 master: $1.40 per 5 s clip + $0.28 per extra second; 10 s -> $2.80 each, four shots.
    assert (by_step["shots"]["count"], by_step["shots"]["usd"]) == (4, "11.2")
    assert by_step["keyframe"]["usd"] == "0.003"  # 1024x768 is one (started) megapixel at $0.003
    assert found["total_usd"] == "11.203" and found["unknown"] == []
    variants = story(lambda d: (setting("keyframe", model="flux-dev", variants=3)(d),
                                setting("shots", image="$look[0].image")(d)))
    assert {s["step"]: s["usd"] for s in _priced(variants, tmp_path)["steps"]}["keyframe"] == "0.075"


def test_estimate_says_unknown_for_gpu_time_unless_rate_and_seconds_are_given(tmp_path: Path) -> None:
    gpu = story(setting("shots", model="wan-2.2-i2v-comfyui", prompt="$item", params={}))
    found = _priced(gpu, tmp_path)
    assert found["total_usd"] is None and found["unknown"] == ["shots"]
    assert {s["step"]: s["usd"] for s in found["steps"]}["shots"] is None
    found = _priced(gpu, tmp_path, "--gpu-usd-per-hour", "0.35", "--gpu-seconds", "100")
    # 0.35 $/h × 100 s = $0.009722 per shot (to a millionth), three shots.
    assert {s["step"]: s["usd"] for s in found["steps"]}["shots"] == "0.029166"
    assert found["total_usd"] == "0.032166"
    file = tmp_path / "gpu.yaml"
    file.write_text(yaml.safe_dump(gpu, sort_keys=False), encoding="utf-8")
    done = run_cli("pipeline", "estimate", str(file))
    assert done.returncode == 0 and "total: unknown (no known price: shots)" in done.stdout, done.stdout


def test_estimate_refuses_bad_inputs_with_exit_2(tmp_path: Path, home: Path) -> None:
    file = tmp_path / "story.yaml"
    file.write_text(STORY_YAML, encoding="utf-8")
    before = _run_count(home)
    done = run_cli("pipeline", "estimate", str(file), "--input", "colour=red")
    assert done.returncode == 2 and "inputs.colour: is not an input of pipeline 'story'; allowed: idea, shots" in \
        " ".join(done.stderr.split()), done.stderr
    done = run_cli("pipeline", "estimate", str(file), "--input", "shots")
    assert done.returncode == 2 and "'shots' is not KEY=VALUE" in done.stderr, done.stderr
    assert _run_count(home) == before
