"""``reelflow cancel``, ``retry`` and ``open`` as a user runs them: ids by unique prefix, clear refusals."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from reelflow.runs.prepare import prepare_run
from reelflow.store import repo
from tests.support.cli import ROOT, run_cli
from tests.support.deployments import QUICK

IMAGE = str(ROOT / "reelflow" / "assets" / "sample.jpg")
ENV = {"BROWSER": "true", "COLUMNS": "300"}  # webbrowser runs `true URL` (nothing opens); messages on one line


def _recorded(prefix: str, seed: int) -> str:
    run_id = prefix + uuid.uuid4().hex[len(prefix):]
    return prepare_run({**QUICK, "image": IMAGE, "seed": seed}, force=True, run_id=run_id).run.run_id


def test_an_ambiguous_prefix_lists_the_matches_and_an_unknown_id_is_refused() -> None:
    prefix = uuid.uuid4().hex[:6]
    first, second = _recorded(prefix + "0", 1), _recorded(prefix + "1", 2)
    for command in ("cancel", "retry", "open"):
        done = run_cli(command, prefix, env=ENV)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "ambiguous" in done.stderr and first in done.stderr and second in done.stderr
    done = run_cli("cancel", "0123456789abcdef-no-such-run", env=ENV)
    assert done.returncode == 2 and "0123456789abcdef-no-such-run" in done.stderr


def test_retry_of_a_failed_run_renders_it_again_under_its_id_and_open_shows_the_video() -> None:
    run_id = _recorded(uuid.uuid4().hex[:8], 3)
    repo.mark_run(run_id, "failed", error="made to fail by the test")
    done = run_cli("retry", run_id[:10], "--json", env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    retried = json.loads(done.stdout)
    assert retried["run_id"] == run_id and retried["status"] == "completed"
    assert [e for e in repo.events_after(run_id) if e.kind == "retry"], "the retry is in the run's events"

    refused = run_cli("retry", run_id, env=ENV)
    assert refused.returncode == 2 and "only failed or cancelled runs can be retried" in refused.stderr
    cancel_done = run_cli("cancel", run_id, env=ENV)
    assert cancel_done.returncode == 1 and "already finished: completed" in cancel_done.stderr

    opened = run_cli("open", run_id[:8], env=ENV)
    video = next(o for o in retried["outputs"] if o["role"] == "video")
    assert opened.returncode == 0 and opened.stdout.strip() == Path(video["path"]).resolve().as_uri()
    page = run_cli("open", run_id[:8], "--prefect", env=ENV)
    flow_run_id = repo.get_run(run_id).prefect_flow_run_id
    assert page.returncode == 0 and page.stdout.strip().endswith(f"/runs/flow-run/{flow_run_id}")
