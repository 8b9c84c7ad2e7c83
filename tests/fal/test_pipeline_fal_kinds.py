"""Pipeline step kinds on fal (the HTTPS emulator) that the story does not use: ``variants`` (N seeds of a step, a
later step taking one item and a concat taking the list), ``edit_image`` with FLUX Kontext and Nano Banana edit,
and the fal language model's ``enhance_prompt`` feeding a later step's prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reelflow.core.media import probe_video
from tests.emulators.fal import FalEmulator
from tests.support.fal_pipeline import FLUX, WAN, Env, cli

KONTEXT = "fal-ai/flux-pro/kontext"
NANO_EDIT = "fal-ai/nano-banana/edit"
LLM = "openrouter/router"


def _run(env: Env, tmp_path: Path, definition: dict[str, Any], *args: str) -> dict[str, Any]:
    file = tmp_path / f"{definition['name']}.yaml"
    file.write_text(yaml.safe_dump(definition))
    code, result = cli(env, "pipeline", "run", str(file), *args, timeout=300)
    assert code == 0 and result["status"] == "completed", result.get("error")
    return result


def _jobs(emu: FalEmulator, endpoint: str) -> list[dict[str, Any]]:
    return [job for job in emu.stats()["jobs"].values() if job["endpoint"] == endpoint]


def _items(result: dict[str, Any], step: str) -> list[dict[str, Any]]:
    return next(s for s in result["steps"] if s["id"] == step)["items"]


def test_variants_fan_out_over_seeds_and_later_steps_take_one_item_or_the_list(emu: FalEmulator, env: Env,
                                                                                 tmp_path: Path) -> None:
    emu.configure(processing_s=0.5)
    result = _run(env, tmp_path, {"name": "variants-fal", "steps": [
        {"id": "stills", "kind": "generate_image", "model": "flux-schnell", "prompt": "a red kite", "variants": 3,
         "params": {"seed": 10}},
        {"id": "chosen", "kind": "image_to_video", "model": "wan-2.5-i2v", "image": "$stills[1].image",
         "prompt": "the kite climbs", "params": {"duration": 5, "resolution": "480p", "seed": 1}},
        {"id": "takes", "kind": "image_to_video", "model": "wan-2.5-i2v", "image": "$stills[0].image",
         "prompt": "the kite dives", "variants": 2, "params": {"duration": 5, "resolution": "480p", "seed": 5}},
        {"id": "film", "kind": "concat", "videos": ["$takes.video", "$chosen.video"]}]})

    assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 3, WAN: 3}
    assert sorted(int(j["arguments"]["seed"]) for j in _jobs(emu, FLUX)) == [10, 11, 12]
    assert sorted(int(j["arguments"]["seed"]) for j in _jobs(emu, WAN)) == [1, 5, 6]
    stills = _items(result, "stills")
    assert [s["seed"] for s in stills] == [10, 11, 12] and len({s["provider_job_id"] for s in stills}) == 3
    assert [s["seed"] for s in _items(result, "takes")] == [5, 6]
    film = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert film.frames == 3 * 8, "the two takes and the chosen clip, the emulator's 8 frames each"


def test_edit_image_with_kontext_then_nano_banana_edit_inside_a_pipeline(emu: FalEmulator, env: Env,
                                                                         tmp_path: Path, photo: Path) -> None:
    result = _run(env, tmp_path, {"name": "edits-fal", "inputs": {"photo": {"type": "image"}}, "steps": [
        {"id": "sepia", "kind": "edit_image", "model": "flux-kontext-pro", "image": "$inputs.photo",
         "prompt": "make it warm sepia"},
        {"id": "hat", "kind": "edit_image", "model": "nano-banana-edit", "image": "$sepia.image",
         "prompt": "give the subject a red hat"},
        {"id": "clip", "kind": "image_to_video", "model": "local-kenburns", "image": "$hat.image",
         "params": {"duration": 1, "fps": 8, "resolution": "160x120"}}]}, "--input", f"photo={photo}")

    assert emu.stats()["submits"]["by_endpoint"] == {KONTEXT: 1, NANO_EDIT: 1}
    (kontext,), (nano,) = _jobs(emu, KONTEXT), _jobs(emu, NANO_EDIT)
    assert kontext["arguments"]["prompt"] == "make it warm sepia" and kontext["arguments"].get("image_url")
    assert nano["arguments"]["prompt"] == "give the subject a red hat" and nano["arguments"].get("image_urls")
    for step in ("sepia", "hat"):
        (item,) = _items(result, step)
        assert item["backend"] == "fal" and item["provider_job_id"] and item["outputs"]["image"]["key"]
        assert item["cost_usd"] is not None and item["cost_usd"] > 0
    assert result["final_outputs"]["video"]["path"]


def test_the_fal_llm_enhances_a_prompt_that_a_later_step_renders(emu: FalEmulator, env: Env, tmp_path: Path,
                                                                   photo: Path) -> None:
    emu.configure(processing_s=0.5)
    result = _run(env, tmp_path, {"name": "llm-fal", "inputs": {"photo": {"type": "image"}}, "steps": [
        {"id": "better", "kind": "enhance_prompt", "model": "gemini-2.5-flash-llm", "prompt": "a fox in snow"},
        {"id": "clip", "kind": "image_to_video", "model": "wan-2.5-i2v", "image": "$inputs.photo",
         "prompt": "$better.text", "params": {"duration": 5, "resolution": "480p"}}]}, "--input", f"photo={photo}")

    assert emu.stats()["submits"]["by_endpoint"] == {LLM: 1, WAN: 1}
    (llm,) = _items(result, "better")
    text = llm["outputs"]["text"]
    assert text.startswith("a fox in snow") and "rendered by" in text, text
    assert llm["cost_usd"] is not None and llm["cost_usd"] > 0, "fal's reported usage.cost"
    (wan,) = _jobs(emu, WAN)
    sent = wan["arguments"]["prompt"]  # the emulator shows a long argument as its first 80 characters + "..."
    assert sent == (text if len(text) <= 80 else text[:80] + "..."), "the enhanced text is the video's prompt"
