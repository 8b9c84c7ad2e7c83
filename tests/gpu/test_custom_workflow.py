"""Custom ComfyUI workflows: registered word for word as the README says, listed as models, and run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelflow.cli.main import app
from reelflow.core.catalog import load_catalog
from tests.emulators.comfyui import ComfyEmulator
from tests.support.cli import ROOT, run_cli_json
from tests.support.gpu import save_gpu
from tests.support.store import step_row

pytestmark = pytest.mark.usefixtures("fast_polls")


def _readme_commands() -> list[list[str]]:
    """The commands of the README's worked example (the code block holding `reelflow workflows add`)."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    block = next(b for b in blocks if "reelflow workflows add" in b)
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def _cli(*args: str, code: int = 0) -> str:
    done = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert done.exit_code == code, done.output
    return " ".join(done.output.split())


def test_readme_workflow_registers_lists_and_runs(fresh_comfy: ComfyEmulator, image: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    add, models, run = _readme_commands()
    assert add[:3] == ["reelflow", "workflows", "add"] and models == ["reelflow", "models"]
    monkeypatch.chdir(ROOT)
    _cli(*add[1:], "--replace")
    name = add[3]
    listed = json.loads(CliRunner().invoke(app, ["workflows", "list", "--json"]).stdout)
    mine = next(w for w in listed if w["model"] == f"comfyui:{name}")
    assert mine["output_node"] == "108" and mine["inject"]["filename_prefix"] == "108.filename_prefix"
    entry = load_catalog().get(f"comfyui:{name}", kind="i2v")
    assert (entry.backend, entry.inputs.default_resolution, entry.inputs.frames_rule) == ("comfyui", "832x480", "4n+1")
    shown = json.loads(CliRunner().invoke(app, [*models[1:], "--json"]).stdout)
    assert next(m for m in shown if m["id"] == f"comfyui:{name}")["backend"] == "comfyui"

    save_gpu(provider="local", comfyui_url=fresh_comfy.url)
    args = [str(image) if arg == "photo.jpg" else arg for arg in run[1:]]
    code, result = run_cli_json(*args, "--force")
    assert code == 0 and result["status"] == "completed", result
    submitted = fresh_comfy.state.history[step_row(result["run_id"], "i2v_comfyui")["job"]]["prompt"][2]
    assert submitted["93"]["inputs"]["text"] == run[run.index("--prompt") + 1]
    assert (submitted["98"]["inputs"]["width"], submitted["98"]["inputs"]["height"]) == (832, 480)
    assert submitted["98"]["inputs"]["length"] == 49 and submitted["94"]["inputs"]["fps"] == 16
    assert submitted["108"]["inputs"]["filename_prefix"].startswith("reelflow/")
    assert submitted["97"]["inputs"]["image"].startswith("reelflow_")
    assert len(fresh_comfy.stats()["submits"]) == 1

    _cli("workflows", "remove", name)
    assert all(m.id != f"comfyui:{name}" for m in load_catalog().models)


def test_bad_registrations_are_refused_with_the_reason(tmp_path: Path) -> None:
    example = str(ROOT / "examples/comfyui/wan22_i2v_lightx2v_api.json")
    base = ["workflows", "add", "broken", "--file", example, "--prompt", "93.text", "--seed", "86.noise_seed",
            "--output", "108"]
    assert "node '999', which is not in the graph" in _cli(*base, "--image", "999.image", code=2)
    assert "86.model is a link from node 104" in _cli(*base, "--image", "97.image", "--fps", "86.model", code=2)
    ui_export = tmp_path / "ui.json"
    ui_export.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    assert "UI-format workflow" in _cli("workflows", "add", "ui", "--file", str(ui_export), "--image", "1.image",
                                        "--prompt", "2.text", "--seed", "3.seed", "--output", "4", code=2)
    assert "must be 1-64 letters" in _cli("workflows", "add", "../x", "--file", example, "--image", "97.image",
                                          "--prompt", "93.text", "--seed", "86.noise_seed", "--output", "108",
                                          code=2)
    assert all(not m.id.startswith("comfyui:broken") for m in load_catalog().models)
