"""The CLI as a new user sees it: ids that paste back, filters that say what is allowed, the whole run in
``status``, a quiet progress display, Ctrl-C, batch summaries and seeds. The CLI runs as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from reelflow.store import repo
from tests.support.cli import REELFLOW, ROOT, run_cli, run_cli_json
from tests.support.files import make_image
from tests.support.polling import wait_until

NARROW = {"COLUMNS": "80"}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tmp_path_factory.mktemp("cli-img") / "scene.png", size=(320, 200))


def _run_args(image: Path, *extra: str) -> list[str]:
    return ["run", "--model", "local-kenburns", "--image", str(image), "--prompt", "drift", "--duration", "1",
            "--fps", "8", "--resolution", "96x64", *extra]


def test_status_shows_steps_timings_and_events_for_a_pasted_short_id(image: Path) -> None:
    done = run_cli(*_run_args(image, "--seed", "41", "--force"), env=NARROW)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "INFO" not in done.stderr, done.stderr
    assert "View at" not in done.stderr and "prefect.engine" not in done.stderr
    assert done.stderr.count("in Prefect: ") <= 1 and "None" not in done.stderr, "the link once, above the bar"
    shown = re.search(r"run ([0-9a-f]{12,32}) completed", done.stdout)
    assert shown, done.stdout
    full = repo.resolve_run_id(shown.group(1))

    code, status = run_cli_json("status", full[:12], "--events")
    assert code == 0 and status["run_id"] == full and status["seed"] == 41
    steps = {s["name"]: s for s in status["steps"]}
    assert set(steps) == {"i2v_local", "cache_r2:video"}
    for step in steps.values():
        assert step["status"] == "completed" and step["started_at"] and step["finished_at"]
        assert step["duration_s"] is not None and step["duration_s"] >= 0
        assert set(step) >= {"backend", "provider_job_id", "cost_usd", "error", "gpu_seconds"}
    assert status["duration_s"] is not None and status["started_at"]
    kinds = [e["kind"] for e in status["events"]]
    assert kinds[0] == "status" and "progress" in kinds and status["events"][-1]["message"] == "completed"

    text = run_cli("status", full[:6], "--events", env=NARROW)
    assert text.returncode == 0 and f"run {full}" in text.stdout and "step i2v_local (local) completed" in text.stdout
    assert "events:" in text.stdout and "completed" in text.stdout.split("events:")[1]


def test_verbose_shows_prefect_log_lines(image: Path) -> None:
    done = run_cli(*_run_args(image, "--seed", "46", "--force", "-v"), env=NARROW)
    assert done.returncode == 0 and "Finished in state Completed" in done.stderr, done.stderr


def test_runs_lists_ids_that_status_accepts_at_80_columns(image: Path) -> None:
    assert run_cli(*_run_args(image, "--seed", "42"), env=NARROW).returncode == 0
    listed = run_cli("runs", "--limit", "5", env=NARROW)
    assert listed.returncode == 0 and "…" not in listed.stdout, listed.stdout
    for run in repo.list_runs(limit=5)[0]:
        if run.video is not None:
            assert f"    {run.video.path}\n" in listed.stdout, "a video path is printed whole, on its own line"
    ids = re.findall(r"^\s*([0-9a-f]{12,32})\s", listed.stdout, flags=re.MULTILINE)
    assert ids, listed.stdout
    for shown in ids:
        assert run_cli("status", shown).returncode == 0, shown


def test_a_prefix_that_is_ambiguous_lists_its_matches_and_an_unknown_one_exits_2() -> None:
    ids = [f"cafe00000000{n}" + "0" * 19 for n in (1, 2)]
    for run_id in ids:
        repo.create_run(run_id=run_id, idempotency_key=run_id, spec={"model": "local-kenburns"},
                        model_id="local-kenburns", backend="local")
    done = run_cli("status", "cafe00")
    assert done.returncode == 2 and "ambiguous" in done.stderr, done.stderr
    assert all(run_id in done.stderr for run_id in ids)
    assert run_cli("status", "cafe000000001").returncode == 0
    listed = run_cli("runs", "--limit", "1000", env=NARROW)
    assert all(run_id in listed.stdout for run_id in ids), "a 12-character prefix shared by two runs is not shown"
    missing = run_cli("status", "ffffffffffff0000")
    assert missing.returncode == 2 and "no run with id 'ffffffffffff0000'" in missing.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (("--status", "done"), "--status: 'done' is not one of: queued, running, waiting, completed, failed, cancelled"),
    (("--model", "nosuchmodel"), "--model: 'nosuchmodel' is not one of: local-kenburns, "),
    (("--batch", "batch-nosuch"), "--batch: no runs belong to batch 'batch-nosuch'"),
])
def test_runs_filters_are_checked(args: tuple[str, ...], expected: str) -> None:
    done = run_cli("runs", *args, env=NARROW)
    assert done.returncode == 2, done.stdout
    assert expected in " ".join(done.stderr.split()), done.stderr
    assert done.stdout == ""


def test_two_seedless_runs_are_two_renders_each_with_its_seed_recorded(image: Path) -> None:
    runs = [run_cli_json(*_run_args(image))[1] for _ in range(2)]
    assert [r["status"] for r in runs] == ["completed", "completed"], runs
    assert not any(r["cached"] for r in runs) and runs[0]["run_id"] != runs[1]["run_id"]
    seeds = [r["seed"] for r in runs]
    assert all(isinstance(s, int) for s in seeds) and seeds[0] != seeds[1]
    again = run_cli_json(*_run_args(image, "--seed", str(seeds[0])))[1]
    assert again["cached"] and again["run_id"] == runs[0]["run_id"], "a given seed is cached as before"


def test_models_prices_carry_a_currency_and_flags_take_no_placeholder() -> None:
    code, models = run_cli_json("models")
    assert code == 0
    for model in models:
        text = model["price_text"]
        assert text in ("free", "GPU time × your $/hour") or text.startswith("$"), text
    wan = next(m for m in models if m["id"] == "wan-2.5-i2v")
    assert wan["price_text"] == "$0.05 per second at 480p, $0.1 at 720p, $0.15 at 1080p"
    table = run_cli("models", env=NARROW)
    assert table.returncode == 0 and "…" not in table.stdout, table.stdout
    for command in (("models",), ("run",), ("runs",), ("status",), ("batch",)):
        helped = run_cli(*command, "--help", env=NARROW)
        assert helped.returncode == 0 and "<bool>" not in helped.stdout, helped.stdout
        assert "--json" in helped.stdout


def test_ctrl_c_says_cancelled_with_the_run_id_and_exits_130(image: Path, tmp_path: Path) -> None:
    slow = ["run", "--model", "local-kenburns", "--image", str(image), "--prompt", "drift", "--duration", "10",
            "--fps", "30", "--resolution", "1280x720", "--seed", "45", "--force"]
    before = {r.run_id for r in repo.list_runs(limit=1000)[0]}
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        proc = subprocess.Popen([*REELFLOW, *slow], cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env={**os.environ, **NARROW})
        try:
            run = wait_until(lambda: next((r for r in repo.list_runs(limit=5, status="running")[0]
                                           if r.run_id not in before), None), 120, "the run to start")
            wait_until(lambda: repo.get_run(run.run_id).progress > 0, 120, "the render to make progress")
            proc.send_signal(signal.SIGINT)
            code = proc.wait(120)
        finally:
            proc.kill()
    stderr = (tmp_path / "err").read_text()
    assert code == 130, stderr
    assert "cancelled: run " in stderr and run.run_id[:12] in stderr, stderr
    assert "Crash detected" not in stderr and "Traceback" not in stderr, stderr
    assert repo.get_run(run.run_id).status in ("cancelled", "failed")


def test_batch_bar_reaches_the_end_and_the_summary_has_pasteable_ids_and_whole_paths(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-with-a-rather-long-name-so-paths-are-long"
    folder.mkdir()
    for n in range(3):
        make_image(folder / f"picture-number-{n}.png", size=(96, 64))
    done = run_cli("batch", str(folder), "--model", "local-kenburns", "--prompt", "drift", "--duration", "0.5",
                   "--fps", "8", "--resolution", "96x64", "--via", "local", env=NARROW)
    assert done.returncode == 0, done.stderr
    assert "3/3" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "…" not in done.stdout, done.stdout
    batch_id = re.search(r"batch (batch-[0-9a-f]{16})", done.stdout).group(1)
    runs, total = repo.list_runs(batch_id=batch_id)
    assert total == 3
    for run in runs:
        assert run.run_id[:12] in done.stdout
    for run in runs:
        assert run.video is not None and f"    {run.video.path}\n" in done.stdout
    code, listed = run_cli_json("runs", "--batch", batch_id)
    assert code == 0 and {r["run_id"] for r in listed["runs"]} == {r.run_id for r in runs}
    flow_runs = json.loads(subprocess.run(
        [*REELFLOW[:1], "-c", _FLOW_RUN_NAMES], capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    assert batch_id in flow_runs and not any(name.startswith("batch-/") for name in flow_runs)


_FLOW_RUN_NAMES = """
import asyncio, json
from prefect.client.orchestration import get_client
async def names():
    async with get_client() as client:
        return [r.name for r in await client.read_flow_runs(limit=200)]
print(json.dumps(asyncio.run(names())))
"""
