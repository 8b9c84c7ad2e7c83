"""Pipeline runs on fal (the HTTPS emulator): a keyframe, three shots fanned out under the ``fal`` limit of 2, a concat;
resume after kill -9 submits only what was not submitted; every paid job once."""

from __future__ import annotations

import signal
from pathlib import Path

import yaml

from reelflow.core.media import probe_video
from reelflow.store import repo
from tests.emulators.fal import FalEmulator
from tests.support.fal_pipeline import FLUX, WAN, Env, cli, kill_group, start_cli
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value

SHOTS = ["waves crash below", "the beam sweeps the sea", "a gull crosses the light"]


def _story(tmp_path: Path, shots: list[str] = SHOTS, name: str = "story.yaml",
           idea: str = "a lighthouse on a cliff at dusk") -> Path:
    definition = {
        "name": "story-fal",
        "inputs": {"idea": {"type": "text", "default": idea},
                   "shots": {"type": "texts", "default": shots}},
        "steps": [
            {"id": "keyframe", "kind": "generate_image", "model": "flux-schnell", "prompt": "$inputs.idea",
             "params": {"seed": 7}},
            {"id": "shots", "kind": "image_to_video", "model": "wan-2.5-i2v", "for_each": "$inputs.shots",
             "image": "$keyframe.image", "prompt": ["$inputs.idea", ", ", "$item"],
             "params": {"duration": 5, "resolution": "480p", "seed": 1}},
            {"id": "film", "kind": "concat", "videos": ["$shots.video"], "params": {"crossfade": 0.5}},
        ],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(definition))
    return path


def test_story_on_fal_runs_two_shots_at_once_and_concats(emu: FalEmulator, env: Env, tmp_path: Path) -> None:
    emu.configure(processing_s=1.0)
    code, result = cli(env, "pipeline", "run", str(_story(tmp_path)), timeout=300)

    assert code == 0 and result["status"] == "completed", result.get("error")
    stats = emu.stats()
    assert stats["submits"]["by_endpoint"] == {FLUX: 1, WAN: 3}
    assert stats["max_in_progress"] == 2, "three shots under the fal limit of 2: two at once, then one"
    shots = next(s for s in result["steps"] if s["id"] == "shots")["items"]
    keys = {i["outputs"]["video"]["key"] for i in shots}
    assert len(keys) == 3, f"each shot's video is stored under its own key: {keys}"
    assert stats["media_downloads"].get("video.mp4") == 3, "each shot's video was fetched from fal"
    assert len({i["provider_job_id"] for i in shots}) == 3
    # each clip is the emulator's 8 frames at 8 fps; two 0.5 s crossfades take 4 frames each
    film = probe_video(Path(result["final_outputs"]["video"]["path"]))
    assert (film.frames, film.fps) == (16, 8.0) and abs(film.duration_s - 2.0) < 0.01
    assert [i["cost_usd"] for i in shots] == [0.25] * 3, "5 s of Wan 2.5 at 480p, $0.05/s"
    costs = [i["cost_usd"] for s in result["steps"] for i in s["items"]]
    assert None not in costs and result["cost_usd"] == round(sum(costs), 6)


def test_kill_after_two_shots_then_resume_submits_only_the_third(emu: FalEmulator, env: Env,
                                                                 tmp_path: Path) -> None:
    emu.configure(processing_s=2.0)
    repo.latest_event_id()  # the store exists before it is polled
    file = _story(tmp_path, shots=["kill a", "kill b", "kill c"], idea="a harbour at night")
    process = start_cli(env, "pipeline", "run", str(file))
    run_id = wait_until(lambda: store_value("SELECT run_id FROM steps WHERE name = 'keyframe' AND run_id IN "
                                            "(SELECT id FROM runs WHERE status = 'running')"), timeout=120,
                        what="the run started")
    wait_until(lambda: store_value("SELECT COUNT(*) FROM steps WHERE run_id = ? AND name LIKE 'shots[_]' AND "
                                   "json_extract(detail, '$.outputs') IS NOT NULL", run_id) == 2, timeout=120,
               what="two shots stored")
    kill_group(process, signal.SIGKILL)
    assert emu.stats()["submits"]["by_endpoint"][WAN] in (2, 3)  # the third may be in flight

    code, resumed = cli(env, "pipeline", "resume", run_id, timeout=300)
    assert code == 0 and resumed["status"] == "completed", resumed.get("error")
    assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 1, WAN: 3}, "the third shot alone was paid for, once"
    assert store_value("SELECT COUNT(*) FROM steps WHERE run_id = ? AND name = 'keyframe'", run_id) == 1

    edited = _story(tmp_path, shots=["kill a", "kill b, edited", "kill c"], name="edited.yaml",
                    idea="a harbour at night")
    code, again = cli(env, "pipeline", "run", str(edited), timeout=300)
    assert code == 0 and again["status"] == "completed", again.get("error")
    assert emu.stats()["submits"]["by_endpoint"] == {FLUX: 1, WAN: 4}, "one new i2v submit for the edited shot"
    rendered = store_rows("SELECT name FROM steps WHERE run_id = ? AND backend != 'cache' AND name NOT LIKE '%:%' "
                          "ORDER BY name", again["run_id"])
    # the emulator answers every job with the same bytes, so the concat's inputs are unchanged and it is reused
    # (tests/test_pipeline_engine.py shows a concat re-rendered when a shot's video really changes)
    assert rendered == [("shots[1]",)]


def test_a_failed_step_fails_only_what_needs_it(emu: FalEmulator, env: Env, tmp_path: Path, photo: Path) -> None:
    emu.configure(fail_result_422=True)
    definition = {
        "name": "half-fails",
        "inputs": {"photo": {"type": "image"}},
        "steps": [
            {"id": "paid", "kind": "image_to_video", "model": "wan-2.5-i2v", "image": "$inputs.photo",
             "prompt": "fails at fal", "params": {"duration": 5, "resolution": "480p"}},
            {"id": "joined", "kind": "concat", "videos": ["$paid.video"]},
            {"id": "local", "kind": "image_to_video", "model": "local-kenburns", "image": "$inputs.photo",
             "params": {"duration": 1, "fps": 8, "resolution": "160x120"}},
        ],
    }
    file = tmp_path / "half.yaml"
    file.write_text(yaml.safe_dump(definition))
    code, result = cli(env, "pipeline", "run", str(file), "--input", f"photo={photo}", timeout=300)
    assert code == 1 and result["status"] == "failed"
    assert result["error"].startswith("step failed: paid (") and "422" in result["error"], result["error"]
    steps = {s["id"]: s for s in result["steps"]}
    assert {k: s["status"] for k, s in steps.items()} == {"paid": "failed", "joined": "skipped",
                                                           "local": "completed"}
    assert "needs 'paid'" in steps["joined"]["error"]


def test_cancel_stops_every_running_provider_job(emu: FalEmulator, env: Env, tmp_path: Path) -> None:
    repo.latest_event_id()
    file = _story(tmp_path, shots=["cancel a", "cancel b", "cancel c"], idea="a bridge in fog")
    emu.configure(processing_s=0.5)
    process = start_cli(env, "pipeline", "run", str(file))
    wait_until(lambda: emu.stats()["completed"] >= 1, timeout=120, what="the keyframe done")
    emu.configure(processing_s=120.0)  # the shots, submitted after this, run until cancelled
    run_id = wait_until(lambda: store_value(
        "SELECT run_id FROM steps WHERE name LIKE 'shots[_]' AND provider_job_id IS NOT NULL GROUP BY run_id "
        "HAVING COUNT(*) = 2"), timeout=120, what="two shots submitted")
    code, cancelled = cli(env, "cancel", run_id, timeout=120)
    assert code == 0 and cancelled["status"] == "cancelled", cancelled
    process.communicate(timeout=60)
    jobs = [r[0] for r in store_rows("SELECT provider_job_id FROM steps WHERE run_id = ? AND name LIKE 'shots[_]' "
                                     "AND provider_job_id IS NOT NULL", run_id)]
    assert sorted(emu.stats()["cancels"]) == sorted(jobs) and len(jobs) == 2, "both running shots cancelled at fal"
    assert emu.stats()["submits"]["by_endpoint"][WAN] == 2, "the third shot never started"
