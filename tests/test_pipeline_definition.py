"""Pipeline definitions: loading, checking, the step graph, inputs; every validation error through the CLI
(``reelflow pipeline validate``) exits 2 naming the step and field, and records nothing."""

from __future__ import annotations

import copy
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelflow.core.pipeline import graph
from reelflow.core.pipeline.check import check_definition, resolve_inputs
from reelflow.core.pipeline.load import load_definition
from reelflow.errors import PipelineDefinitionError
from tests.support.cli import ROOT, run_cli

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
    "unknown model": (setting("shots", model="no-such-model"), "shots", "model", "unknown video model (i2v/t2v)"),
    "model of the wrong kind": (setting("keyframe", model="local-kenburns"), "keyframe", "model",
                                "'local-kenburns' is a video model (i2v), not an image model (t2i)"),
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
    "unknown field": (setting("keyframe", colour="red"), "keyframe", "colour", "is not a known field; allowed: "
                      "id, kind, for_each, model, negative_prompt, params, prompt, variants"),
    "bad pipeline name": (lambda d: d.update(name="my story!"), None, "name", "allowed: letters, digits, space"),
    "bad step id": (setting("film", id="Film!"), "Film!", "id", "lowercase letters"),
    "duplicate step id": (setting("film", id="shots"), "shots", "id", "more than one step"),
    "bad input default": (lambda d: d["inputs"].update(n={"type": "number", "default": "many"}), None,
                          "inputs.n.default", "'many' is not a number"),
    "empty prompt": (setting("keyframe", prompt=" "), "keyframe", "prompt", "must not be empty"),
    "negative prompt the model does not take": (setting("keyframe", negative_prompt="blur"), "keyframe",
                                                "negative_prompt", "does not take a negative prompt"),
    "skipping the approval": (setting("shots", image="$keyframe.image"), "shots", "image",
                              "takes the output of 'keyframe' before 'look' approves it; take $look.image"),
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


@pytest.mark.parametrize("case", ["cycle", "missing input", "missing step", "missing output",
                                  "video into an image input", "list into one image", "index of a single step",
                                  "$item outside for_each", "not a reference", "unknown model",
                                  "model of the wrong kind", "unknown kind", "unknown field", "duplicate step id",
                                  "out-of-range duration", "resolution not offered", "unknown param",
                                  "for_each not over a list", "approve of a missing step", "concat of no videos",
                                  "bad input default", "bad pipeline name", "skipping the approval"])
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


def test_a_comfyui_step_takes_a_registered_workflow_checked_like_reelflow_run(tmp_path: Path) -> None:
    env = {"REELFLOW_HOME": str(tmp_path / "home")}
    workflow = ROOT / "examples" / "comfyui" / "wan22_i2v_lightx2v_api.json"
    added = run_cli("workflows", "add", "wan-pdef", "--file", str(workflow),
                    "--image", "97.image", "--prompt", "93.text", "--seed", "86.noise_seed", "--width", "98.width",
                    "--height", "98.height", "--length", "98.length", "--fps", "94.fps", "--output", "108",
                    "--frames-rule", "4n+1", env=env)
    assert added.returncode == 0, added.stderr
    good = {"name": "animate", "inputs": {"photo": {"type": "image"}},
            "steps": [{"id": "anim", "kind": "comfyui", "model": "comfyui:wan-pdef", "image": "$inputs.photo",
                       "prompt": "leaves drift", "params": {"frames": 49}},
                      {"id": "film", "kind": "concat", "videos": ["$anim.video"]}]}
    cases = {
        "ok": (good, 0, "animate: valid, 2 steps: anim -> film"),
        "frames": (_with(good, 0, params={"frames": 80}), 2, "steps.anim.params.frames: 80 is not allowed; this "
                   "model needs 4n+1 frames"),
        "unknown workflow": (_with(good, 0, model="comfyui:nope"), 2, "steps.anim.model: unknown ComfyUI "
                             "workflow 'comfyui:nope'; allowed: wan-2.2-i2v-comfyui, comfyui:wan-pdef"),
        "not a ComfyUI model": (_with(good, 0, model="local-kenburns"), 2, "steps.anim.model: 'local-kenburns' "
                                "is a video model (i2v), not a ComfyUI workflow"),
        "makes a video, not an image": (_with(good, 1, kind="image_to_video", model="local-kenburns",
                                              image="$anim.image", videos=None), 2,
                                        "steps.film.image: '$anim.image': step 'anim' (comfyui) has no output "
                                        "'image'; it makes: video"),
    }
    for name, (definition, code, words) in cases.items():
        file = tmp_path / f"{name}.yaml"
        file.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
        done = run_cli("pipeline", "validate", str(file), env=env)
        said = " ".join((done.stdout + done.stderr).split())
        assert done.returncode == code and words in said, (name, said)


def _with(definition: dict[str, Any], index: int, **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(definition)
    changed["steps"][index].update(fields)
    changed["steps"][index] = {k: v for k, v in changed["steps"][index].items() if v is not None}
    return changed


ALL_KINDS = """\
name: all kinds
inputs:
  photo: {type: image}
  idea: {type: text, default: "a lighthouse"}
steps:
  - {id: better, kind: enhance_prompt, model: local-template-prompt, prompt: $inputs.idea, params: {style: noir}}
  - {id: llm, kind: enhance_prompt, model: gemini-2.5-flash-llm, prompt: $inputs.idea}
  - {id: key, kind: generate_image, model: local-procedural-image, prompt: $better.text}
  - {id: edit, kind: edit_image, model: local-pillow-edit, image: $key.image, prompt: "make it warmer"}
  - {id: kontext, kind: edit_image, model: flux-kontext-pro, image: $inputs.photo, prompt: "make it night"}
  - {id: clip, kind: image_to_video, model: local-kenburns, image: $edit.image, prompt: $llm.text}
  - {id: t2v, kind: image_to_video, model: veo-3.1-fast-t2v, prompt: $llm.text}
  - {id: flf, kind: image_to_video, model: veo-3.1-flf, image: $kontext.image, end_image: $edit.image, prompt: x}
  - {id: more, kind: extend, model: local-kenburns, video: $clip.video, times: 2}
  - {id: film, kind: concat, videos: [$clip.video, $more.video, $t2v.video, $flf.video]}
"""


def test_every_step_kind_checks_and_prices(tmp_path: Path) -> None:
    definition = load_definition(ALL_KINDS)
    check_definition(definition)
    file = tmp_path / "all.yaml"
    file.write_text(ALL_KINDS, encoding="utf-8")
    found = json.loads(run_cli("pipeline", "estimate", str(file), "--input", "photo=p.png", "--json").stdout)
    by_step = {s["step"]: s for s in found["steps"]}
    assert {name: by_step[name]["usd"] for name in ("better", "key", "edit", "clip", "film")} == dict.fromkeys(
        ("better", "key", "edit", "clip", "film"), "0")
    assert by_step["more"]["count"] == 2
    assert by_step["llm"]["usd"] is None and "unknown in advance" in by_step["llm"]["note"]  # priced per token
    assert found["total_usd"] is None and found["unknown"] == ["llm"]


def _kinds(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = yaml.safe_load(ALL_KINDS)
    change(data)
    return data


KIND_ERRORS: dict[str, tuple[Callable[[dict[str, Any]], None], str, str, str]] = {
    "edit with a text-to-image model": (setting("edit", model="flux-schnell"), "edit", "model",
                                        "'flux-schnell' is an image model (t2i), not an image edit model (i2i)"),
    "enhance with a video model": (setting("better", model="local-kenburns"), "better", "model",
                                   "not a language model (llm) for an enhance_prompt step"),
    "text-to-video given an image": (setting("t2v", image="$key.image"), "t2v", "image",
                                     "makes video from text only"),
    "image-to-video without an image": (lambda d: step(d, "clip").pop("image"), "clip", "image", "is required"),
    "end image the model does not take": (setting("clip", end_image="$edit.image"), "clip", "end_image",
                                          "takes no end image; models that take one: "),
    "end image missing": (lambda d: step(d, "flf").pop("end_image"), "flf", "end_image", "needs an end image"),
    "text into an image input": (setting("edit", image="$better.text"), "edit", "image",
                                 "is a text; image takes an image"),
    "style not a text": (setting("better", params={"style": 3}), "better", "params.style", "must be a text"),
    "empty instruction": (setting("edit", prompt=""), "edit", "prompt", "must not be empty"),
    "extend with variants": (setting("more", variants=2), "more", "variants", "is not used by an extend step"),
    "seed on a model without one": (setting("better", params={"seed": 3}), "better", "params.seed",
                                    "model 'local-template-prompt' does not take a seed"),
    "variants of a model without seeds": (setting("llm", variants=2), "llm", "variants",
                                          "does not take a seed, so its variants would be identical"),
}


@pytest.mark.parametrize("case", list(KIND_ERRORS))
def test_kind_specific_errors_name_the_step_and_field(case: str) -> None:
    change, step_id, field, words = KIND_ERRORS[case]
    with pytest.raises(PipelineDefinitionError) as caught:
        check_definition(load_definition(_kinds(change)))
    assert (caught.value.step, caught.value.step_field) == (step_id, field), str(caught.value)
    assert words in caught.value.message, caught.value.message


def _readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Pipelines: the definition format")
    return text[start:text.index("\n## ", start + 3)]


def test_the_readme_examples_are_valid_definitions(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", _readme_section(), re.S)
    names = []
    for index, block in enumerate(blocks):
        file = tmp_path / f"example{index}.yaml"
        file.write_text(block, encoding="utf-8")
        done = run_cli("pipeline", "validate", str(file))
        assert done.returncode == 0, (block, done.stderr)
        names.append(load_definition(block).name)
    assert names == ["story", "edit-then-animate", "long-take"]
    assert "exit 0: " + run_cli("pipeline", "validate", str(tmp_path / "example0.yaml")).stdout.strip() in \
        _readme_section()


def test_the_readme_error_examples_are_what_validate_says(tmp_path: Path) -> None:
    said = re.findall(r"^error: (.*)$", _readme_section(), re.M)
    story_text = re.findall(r"```yaml\n(.*?)```", _readme_section(), re.S)[0]
    file = tmp_path / "story.yaml"
    for broken in (story_text.replace("{type: texts, default: [", "{type: text, default: \"x\"}  # ["),
                   story_text.replace("params: {duration: 2,", "params: {duration: 99,")):
        file.write_text(broken, encoding="utf-8")
        done = run_cli("pipeline", "validate", str(file))
        assert done.returncode == 2 and " ".join(done.stderr.split()).removeprefix("error: ") in said, done.stderr


def test_yaml_aliases_are_refused_and_python_built_duplicates_are_caught() -> None:
    with pytest.raises(PipelineDefinitionError, match="anchors and aliases"):
        load_definition("name: a\nx: &big [1, 2]\nsteps: [{id: film, kind: concat, videos: *big}]\n")
    from reelflow.core.pipeline.definition import PipelineDefinition, StepDef

    twice = PipelineDefinition(name="twice", steps=[StepDef(id="film", kind="concat", videos=["$film.video"])] * 2)
    with pytest.raises(PipelineDefinitionError, match="used by more than one step") as caught:
        check_definition(twice)
    assert (caught.value.step, caught.value.step_field) == ("film", "id")


USER_SCRIPT = """
import json, sys
from reelflow.core.pipeline.check import check_definition
from reelflow.core.pipeline.estimate import estimate
from reelflow.core.pipeline.load import load_definition
from reelflow.errors import PipelineDefinitionError

definition = load_definition(json.loads(sys.argv[1]))
check_definition(definition)
priced = estimate(definition, {"shots": ["one", "two"]})
try:
    check_definition(load_definition({**json.loads(sys.argv[1]), "steps": [{"id": "x", "kind": "concat"}]}))
except PipelineDefinitionError as exc:
    error = [exc.step, exc.step_field]
print(json.dumps({"total": str(priced.total_usd), "error": error, "prefect": "prefect" in sys.modules}))
"""


def test_a_user_script_checks_and_prices_a_definition_without_prefect(tmp_path: Path) -> None:
    kling = story(setting("shots", model="kling-2.1-master-i2v", params={"duration": 5}))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", USER_SCRIPT, json.dumps(kling)], capture_output=True, text=True,
                          env=environment, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"total": "2.803", "error": ["x", "videos"], "prefect": False}
