"""fal pipelines end to end: CLI or runner process -> Prefect flow -> fal tasks -> HTTPS fal emulator -> store.

Flows run in subprocesses (fal-client reads its hosts at import); the store and the Prefect server
are the test session's, so the ``fal`` concurrency limit is the real one.
"""

from __future__ import annotations

import signal
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from reelflow.runs.prepare import prepare_run
from tests.emulators.fal import FalEmulator
from tests.support.fal_pipeline import (
    FLUX,
    WAN,
    Env,
    cli,
    fal_env,
    kill_group,
    prefect,
    runs_result,
    served_flow,
    start_cli,
    start_runs,
    wan_args,
)
from tests.support.files import file_server, sha256_file
from tests.support.polling import wait_until
from tests.support.store import store_rows, store_value


def _fal_limit() -> tuple[int, int]:
    found = prefect(lambda client: client.read_global_concurrency_limit_by_name("fal"))
    return found.limit, found.active_slots


def test_eight_runs_never_exceed_the_limit_of_two(emu: FalEmulator, env: Env, photo: Path) -> None:
    emu.configure(processing_s=1.0)
    specs = [{"model": "wan-2.5-i2v", "image": str(photo), "prompt": f"clip {i}", "seed": i, "resolution": "480p"}
             for i in range(8)]
    processes = [start_runs(env, specs[:4]), start_runs(env, specs[4:])]
    results = [run for process in processes for run in runs_result(process)]

    assert [r["status"] for r in results] == ["completed"] * 8, [r["error"] for r in results]
    stats = emu.stats()
    assert stats["submits"]["total"] == 8 and stats["completed"] == 8
    assert stats["max_in_progress"] == 2, "two flow processes must share the limit of 2, and use all of it"
    assert _fal_limit() == (2, 0), "the limit is created on first use with REELFLOW_FAL_CONCURRENCY slots"
    assert all(r["cost_usd"] == 0.25 for r in results), "5 s of Wan 2.5 at 480p, $0.05/s"


def test_killed_flow_process_is_resumed_without_a_second_submit(emu: FalEmulator, env: Env, photo: Path) -> None:
    emu.configure(processing_s=120.0)
    process = start_cli(env, *wan_args(photo, "killed after submit"))
    request_id = wait_until(lambda: emu.stats()["submits"]["total"] == 1 and store_value(
        "SELECT provider_job_id FROM steps WHERE name = 'i2v_fal' AND provider_job_id IS NOT NULL "
        "AND status = 'running'"), what="the submit, and its request id in the store")
    run_id, old_flow_run = store_rows("SELECT runs.id, runs.prefect_flow_run_id FROM runs JOIN steps "
                                      "ON steps.run_id = runs.id WHERE steps.provider_job_id = ?", request_id)[0]
    code, refused = cli(env, "resume", run_id)
    assert code == 2 and "being worked on by another live process" in refused["error"], refused

    kill_group(process, signal.SIGKILL)
    assert store_value("SELECT status FROM runs WHERE id = ?", run_id) == "running"
    assert _fal_limit()[1] == 1, "the dead process still holds its slot"
    assert store_value("SELECT slot_limit FROM steps WHERE provider_job_id = ? AND slot_lease_id IS NOT NULL",
                       request_id) == "fal", "the step row names the slot it holds, for resume to free"
    assert emu.finish_running() == 1
    code, resumed = cli(env, "resume", run_id)

    assert code == 0 and resumed["status"] == "completed", resumed
    stats = emu.stats()
    assert stats["submits"]["total"] == 1 and list(stats["jobs"]) == [request_id]
    assert store_rows("SELECT name, status, attempts, provider_job_id FROM steps WHERE run_id = ? ORDER BY id",
                      run_id) == [("i2v_fal", "completed", 2, request_id), ("cache_r2:video", "completed", 1, None)]
    assert resumed["outputs"][0]["role"] == "video" and resumed["cost_usd"] == 0.25
    assert _fal_limit()[1] == 0, "resume gave back the slot the dead process held"
    old = prefect(lambda client: client.read_flow_run(UUID(old_flow_run)))
    assert old.state.type == StateType.CRASHED
    code, again = cli(env, "resume", run_id)
    assert code == 0 and again["status"] == "completed" and emu.stats()["submits"]["total"] == 1


def test_422_on_submit_or_on_result_fails_the_run_with_fals_message(emu: FalEmulator, env: Env,
                                                                     photo: Path) -> None:
    emu.configure(fail_submit_422=True)
    code, result = cli(env, *wan_args(photo, "rejected at submit"))
    assert code == 1 and result["status"] == "failed"
    assert "HTTP 422: body.prompt: rejected by the emulator's fail_submit_422 knob (value_error)" in result["error"]
    assert emu.stats()["submits"]["total"] == 0 and emu.stats()["requests_total"] == 1, "a 422 is not retried"

    emu.reset()
    emu.configure(fail_result_422=True, account_concurrency=16)
    code, result = cli(env, *wan_args(photo, "rejected at result"))
    assert code == 1 and result["status"] == "failed"
    assert "HTTP 422: body.image_url: could not load image (image_load_error)" in result["error"]
    stats = emu.stats()
    assert stats["submits"]["total"] == 1 and stats["result_calls"] == 1
    assert store_value("SELECT provider_job_id FROM steps WHERE run_id = ? AND name = 'i2v_fal'",
                       result["run_id"]) == next(iter(stats["jobs"]))


def test_429_burst_and_failing_status_calls_still_complete_with_one_submit(emu: FalEmulator, photo: Path) -> None:
    emu.configure(burst_429=3)
    code, result = cli(fal_env(emu), *wan_args(photo, "rate limited"))
    assert code == 0 and result["status"] == "completed", result
    assert emu.stats()["rate_limited"] == 3 and emu.stats()["submits"]["total"] == 1

    emu.reset()
    emu.configure(status_500_count=3, account_concurrency=16)
    quick = fal_env(emu, REELFLOW_FAL_RETRY_ATTEMPTS="2", REELFLOW_FAL_RETRY_INITIAL_S="0.05")
    code, result = cli(quick, *wan_args(photo, "status errors"))
    assert code == 0 and result["status"] == "completed", result
    assert emu.stats()["submits"]["total"] == 1
    attempts = store_value("SELECT attempts FROM steps WHERE run_id = ? AND name = 'i2v_fal'", result["run_id"])
    assert attempts == 2, "the Prefect task retry resumed the stored request instead of submitting again"


def test_deadline_cancels_the_request_and_fails_the_run(emu: FalEmulator, photo: Path) -> None:
    emu.configure(queue_delay_s=120.0)
    code, result = cli(fal_env(emu, REELFLOW_FAL_DEADLINES='{"wan-2.5-i2v": 2}'), *wan_args(photo, "too slow"))
    assert code == 1 and result["status"] == "failed"
    assert "did not finish within the 2 s deadline; cancel requested" in result["error"]
    stats = emu.stats()
    assert stats["cancels"] == list(stats["jobs"]) and stats["by_status"] == {"CANCELLED": 1}


def test_cancelling_the_prefect_flow_run_cancels_the_fal_request(emu: FalEmulator, env: Env, photo: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancellation as Prefect does it: the flow run is served by a runner, which stops it once it is Cancelling."""
    emu.configure(queue_delay_s=60.0)
    monkeypatch.setenv("FAL_KEY", "only-for-the-availability-check")
    run = prepare_run({"model": "wan-2.5-i2v", "image": str(photo), "prompt": "cancel me", "resolution": "480p"},
                      force=True).run
    with served_flow(env, "fal-cancel-test") as deployment:
        flow_run = run_deployment(deployment, timeout=0, parameters={"spec": run.spec, "run_id": run.run_id})
        wait_until(lambda: emu.stats()["by_status"].get("IN_QUEUE"), what="the request to be queued at fal")
        prefect(lambda client: client.set_flow_run_state(flow_run.id, Cancelling(), force=True))
        wait_until(lambda: emu.stats()["cancels"], what="the cancel to reach fal")
        wait_until(lambda: prefect(lambda client: client.read_flow_run(flow_run.id)).state.is_final(),
                   what="the flow run to end")
    stats = emu.stats()
    assert stats["by_status"] == {"CANCELLED": 1} and stats["cancels"] == list(stats["jobs"])
    assert store_rows("SELECT runs.status, steps.status FROM runs JOIN steps ON steps.run_id = runs.id "
                      "WHERE runs.id = ?", run.run_id) == [("cancelled", "cancelled")]
    assert _fal_limit()[1] == 0


def test_without_fal_key_nothing_is_recorded_or_queued(emu: FalEmulator, env: Env, photo: Path) -> None:
    no_key = {k: v for k, v in env.items() if k != "FAL_KEY"}
    runs_before = store_value("SELECT COUNT(*) FROM runs")
    code, result = cli(no_key, *wan_args(photo, "no key"))
    assert code == 2 and result["status"] == "rejected"
    assert "model 'wan-2.5-i2v' is not available: no fal credentials: set FAL_KEY" in result["error"]
    assert store_value("SELECT COUNT(*) FROM runs") == runs_before
    assert emu.stats()["requests_total"] == 0 and _fal_limit()[1] == 0


def test_prompt_to_flux_image_to_wan_video(emu: FalEmulator, env: Env) -> None:
    code, result = cli(env, "run", "--model", "wan-2.5-i2v", "--image-prompt", "a red fox in snow", "--prompt",
                       "the fox runs", "--resolution", "480p", "--seed", "11")
    assert code == 0 and result["status"] == "completed", result
    outputs = {o["role"]: o for o in result["outputs"]}
    assert set(outputs) == {"image", "video", "poster"}
    assert (outputs["image"]["content_type"], outputs["image"]["width"]) == ("image/jpeg", 1024)
    assert outputs["poster"]["content_type"] == "image/jpeg"
    for output in outputs.values():
        assert sha256_file(Path(output["path"])) == output["sha256"]
    assert store_rows("SELECT name, status, cost_micro_usd FROM steps WHERE run_id = ? ORDER BY id",
                      result["run_id"]) == [
        ("generate_image", "completed", 3_000), ("cache_r2:image", "completed", None),
        ("i2v_fal", "completed", 250_000), ("cache_r2:video", "completed", None)], "micro-dollars, exact"
    assert result["cost_usd"] == 0.253
    stats = emu.stats()
    assert stats["submits"]["by_endpoint"] == {FLUX: 1, WAN: 1}
    wan_job = next(job for job in stats["jobs"].values() if job["endpoint"] == WAN)
    assert wan_job["arguments"]["image_url"].startswith("data:image/jpeg;base64,")
    assert wan_job["arguments"]["duration"] == "5" and wan_job["arguments"]["seed"] == 11


def test_an_image_url_reaches_fal_as_given_and_the_result_is_fetched_once(emu: FalEmulator, env: Env,
                                                                          photo: Path) -> None:
    """``--image http://…``: checked and stored by reelflow, then handed to fal as the URL itself (fal fetches it),
    and the poster is made from the stored video, not by reading fal's URL a second time."""
    asked: list[str] = []
    with file_server(photo.parent, asked) as base:
        url = f"{base}/{photo.name}"
        code, result = cli(env, "run", "--model", "wan-2.5-i2v", "--image", url, "--prompt", "a slow pan",
                           "--resolution", "480p", "--seed", "3")
    assert code == 0 and result["status"] == "completed", result
    stats = emu.stats()
    [job] = stats["jobs"].values()
    assert job["arguments"]["image_url"] == url, "the URL, not a data: URI of its bytes"
    assert stats["image_fetches"] == [url] and asked == [f"/{photo.name}"] * 2, \
        "read once by reelflow's check, once by fal"
    outputs = {o["role"]: o for o in result["outputs"]}
    assert set(outputs) == {"input", "video", "poster"}
    assert outputs["input"]["sha256"] == sha256_file(photo)
    assert stats["media_downloads"] == {"video.mp4": 1}, "fal's result URL is read once, by the copy to storage"
    assert store_value("SELECT spec FROM runs WHERE id = ?", result["run_id"]).count(url) == 1
