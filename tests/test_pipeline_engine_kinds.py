"""The step kinds beyond image_to_video and concat, through the shipped examples as the README runs them
(``reelflow pipeline run examples/pipelines/...``): edit_image, extend; and enhance_prompt feeding generate_image."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reelflow.core.media import probe_video
from tests.support.cli import ROOT, run_cli_json
from tests.support.files import make_image, sha256_file

EXAMPLES = ROOT / "examples" / "pipelines"


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("kinds") / "photo.png", size=(320, 240))


def test_long_take_extends_three_times_from_each_last_frame(photo: Path) -> None:
    code, result = run_cli_json("pipeline", "run", str(EXAMPLES / "long-take.yaml"), "--input", f"photo={photo}")
    assert code == 0 and result["status"] == "completed", result.get("error")
    steps = {s["id"]: s for s in result["steps"]}
    assert [i["name"] for i in steps["more"]["items"]] == ["more[0]", "more[1]", "more[2]"]
    take = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert (take.frames, take.width, take.height) == (4 * 48, 640, 360), "four 2 s clips at 24 fps"
    assert take.duration_s == pytest.approx(8.0, abs=0.01)


def test_edit_then_animate(photo: Path) -> None:
    code, result = run_cli_json("pipeline", "run", str(EXAMPLES / "edit-then-animate.yaml"),
                                "--input", f"photo={photo}")
    assert code == 0 and result["status"] == "completed", result.get("error")
    steps = {s["id"]: s for s in result["steps"]}
    edited = steps["edit"]["items"][0]["outputs"]["image"]
    assert edited["sha256"] != sha256_file(photo), "the edit changed the image"
    video = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert (video.frames, video.width, video.height) == (72, 640, 360)


def test_enhanced_prompt_feeds_the_image_step(tmp_path: Path) -> None:
    definition = {
        "name": "enhanced",
        "inputs": {"idea": {"type": "text", "default": "a red kite over the dunes"}},
        "steps": [
            {"id": "better", "kind": "enhance_prompt", "model": "local-template-prompt", "prompt": "$inputs.idea"},
            {"id": "still", "kind": "generate_image", "model": "local-procedural-image", "prompt": "$better.text",
             "params": {"resolution": "320x240"}},
        ],
    }
    file = tmp_path / "enhanced.yaml"
    file.write_text(yaml.safe_dump(definition))
    code, result = run_cli_json("pipeline", "run", str(file))
    assert code == 0 and result["status"] == "completed", result.get("error")
    steps = {s["id"]: s for s in result["steps"]}
    text = steps["better"]["items"][0]["outputs"]["text"]
    assert "a red kite over the dunes" in text and text != "a red kite over the dunes"
    image = result["final_outputs"]["image"]
    assert (image["width"], image["height"]) == (320, 240)
