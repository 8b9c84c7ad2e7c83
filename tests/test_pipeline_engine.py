"""Pipeline runs end to end on the local models, as users run them: ``reelflow pipeline run|show`` as a subprocess
against the session's real Prefect server; steps as task runs, per-step reuse across runs, decoded outputs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter
from prefect.client.schemas.objects import TaskRun

from reelflow.core.media import probe_video
from tests.support.cli import run_cli, run_cli_json
from tests.support.files import make_image
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value

SHOTS = ["waves crash below", "the beam sweeps the sea", "a gull crosses the light"]


def _definition(shots_prompt: str = "a lighthouse at dusk, ") -> dict:
    return {
        "name": "three-shots",
        "inputs": {"photo": {"type": "image"}, "shots": {"type": "texts", "default": SHOTS}},
        "steps": [
            {"id": "shots", "kind": "image_to_video", "model": "local-kenburns", "for_each": "$inputs.shots",
             "image": "$inputs.photo", "prompt": [shots_prompt, "$item"],
             "params": {"duration": 1, "fps": 8, "resolution": "160x120"}},
            {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.25}},
        ],
    }


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("pipe") / "photo.png", size=(320, 240))


def _write(tmp_path: Path, definition: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(definition))
    return path


def _task_runs(flow_run_id: str) -> dict[str, str]:
    """Each task run's state, once Prefect has recorded them all (its task-run recorder writes them a moment after
    the flow reports them)."""
    async def read() -> list[TaskRun]:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])),
                task_run_filter=TaskRunFilter())

    runs = wait_until(lambda: (found := asyncio.run(read())) and all(t.state for t in found) and found, 60,
                      "every task run's state recorded")
    return {t.name: t.state.type.value for t in runs if t.state}


def _rendered(run_id: str) -> list[str]:
    """The pipeline step items that really ran in this run (not reused, not helpers)."""
    return [r[0] for r in store_rows("SELECT name FROM steps WHERE run_id = ? AND backend != 'cache' AND "
                                     "name NOT LIKE '%:%' AND status = 'completed' ORDER BY name", run_id)]


def test_fan_out_concat_reuse_and_edit_one_shot(tmp_path: Path, photo: Path) -> None:
    file = _write(tmp_path, _definition())
    code, result = run_cli_json("pipeline", "run", str(file), "--input", f"photo={photo}")
    assert code == 0, result
    assert result["status"] == "completed" and result["kind"] == "pipeline" and result["cost_usd"] == 0.0
    steps = {s["id"]: s for s in result["steps"]}
    assert [i["name"] for i in steps["shots"]["items"]] == ["shots[0]", "shots[1]", "shots[2]"]
    assert all(i["status"] == "completed" and i["reused_from"] is None for i in steps["shots"]["items"])
    assert steps["film"]["depends_on"] == ["shots"]
    film = result["final_outputs"]["video"]
    facts = probe_video(Path(film["path"]))
    # three 8-frame clips at 8 fps, two crossfades of 0.25 s (2 frames) each: 24 - 4 frames, 2.5 s
    assert (facts.frames, facts.width, facts.height) == (20, 160, 120)
    assert facts.duration_s == pytest.approx(2.5, abs=0.01)
    assert len({i["outputs"]["video"]["sha256"] for i in steps["shots"]["items"]}) == 3, "one video per shot"

    tasks = _task_runs(result["prefect_flow_run_id"])
    assert {"shots[0]", "shots[1]", "shots[2]", "film"} <= set(tasks), tasks
    assert {tasks[n] for n in ("shots[0]", "shots[1]", "shots[2]", "film")} == {"COMPLETED"}
    graph = store_rows("SELECT name, kind, pipeline_step, fan_index, depends_on, idempotency_key IS NOT NULL "
                       "FROM steps WHERE run_id = ? AND name NOT LIKE '%:%' ORDER BY name", result["run_id"])
    assert graph == [("film", "concat", "film", None, '["shots"]', 1),
                     ("shots[0]", "image_to_video", "shots", 0, "[]", 1),
                     ("shots[1]", "image_to_video", "shots", 1, "[]", 1),
                     ("shots[2]", "image_to_video", "shots", 2, "[]", 1)]

    code, shown = run_cli_json("pipeline", "show", result["run_id"][:10])
    assert code == 0 and shown["steps"] == result["steps"] and shown["final_outputs"] == result["final_outputs"]

    runs_before = store_value("SELECT COUNT(*) FROM runs")
    code, again = run_cli_json("pipeline", "run", str(file), "--input", f"photo={photo}")
    assert code == 0 and again["cached"] is True and again["run_id"] == result["run_id"]
    assert store_value("SELECT COUNT(*) FROM runs") == runs_before

    edited = _definition()
    edited["inputs"]["shots"]["default"] = [SHOTS[0], "the beam sweeps a stormy sea", SHOTS[2]]
    code, changed = run_cli_json("pipeline", "run", str(_write(tmp_path, edited, "edited.yaml")),
                                 "--input", f"photo={photo}")
    assert code == 0 and changed["status"] == "completed" and changed["run_id"] != result["run_id"]
    assert _rendered(changed["run_id"]) == ["film", "shots[1]"], "only the edited shot and the concat render"
    items = {i["name"]: i for s in changed["steps"] for i in s["items"]}
    assert items["shots[0]"]["reused_from"] == {"run_id": result["run_id"], "step": "shots[0]"}
    assert items["shots[0]"]["outputs"]["video"]["sha256"] == steps["shots"]["items"][0]["outputs"]["video"]["sha256"]

    code, forced = run_cli_json("pipeline", "run", str(file), "--input", f"photo={photo}", "--force")
    assert code == 0 and forced["status"] == "completed" and forced["run_id"] != result["run_id"]
    assert _rendered(forced["run_id"]) == ["film", "shots[0]", "shots[1]", "shots[2]"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["steps"][0].update(model="no-such-model"), "steps.shots.model"),
    (lambda d: d["steps"][1].update(videos=["$nowhere.video"]), "steps.film"),
    (lambda d: d["steps"][0]["params"].update(fps=500), "steps.shots.params.fps"),
])
def test_bad_definition_exits_2_and_records_nothing(tmp_path: Path, photo: Path, change, field: str) -> None:
    definition = _definition()
    change(definition)
    runs_before = store_value("SELECT COUNT(*) FROM runs")
    done = run_cli("pipeline", "run", str(_write(tmp_path, definition)), "--input", f"photo={photo}", "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert field in done.stdout, done.stdout
    assert store_value("SELECT COUNT(*) FROM runs") == runs_before


def test_run_without_json_prints_the_estimate_then_the_graph(tmp_path: Path, photo: Path) -> None:
    definition = _definition("printed, ")
    definition["inputs"]["shots"]["default"] = ["only one"]
    done = run_cli("pipeline", "run", str(_write(tmp_path, definition)), "--input", f"photo={photo}", "--force")
    assert done.returncode == 0, done.stderr
    assert "three-shots: estimated cost" in done.stdout and "total: $0.00" in done.stdout
    assert "film (concat)  completed" in done.stderr, done.stderr
    assert " completed; cost $0.0000" in done.stdout
