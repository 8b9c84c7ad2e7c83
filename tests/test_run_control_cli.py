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


def test_cancel_of_a_run_whose_worker_was_killed_ends_its_running_step_too() -> None:
    """The worker killed the flow's process (Prefect has the flow run Cancelled) before the step could close
    itself: ``reelflow cancel`` reconciles the run, and the step shows cancelled, not running for ever."""
    import asyncio

    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    @flow(name="killed-by-its-worker")
    def killed() -> None: ...

    async def cancelled_flow_run() -> str:
        async with get_client() as client:
            flow_run = await client.create_flow_run(killed)
            await client.set_flow_run_state(flow_run.id, Cancelled(message="the worker killed it"), force=True)
            return str(flow_run.id)

    run_id = _recorded(uuid.uuid4().hex[:8], 4)
    repo.mark_run(run_id, "running", prefect_flow_run_id=asyncio.run(cancelled_flow_run()))
    repo.open_step(run_id, "i2v_local", "local", prefect_task_run_id=None)

    done = run_cli("cancel", run_id, "--json", env=ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == "cancelled"
    steps = repo.get_run(run_id).steps
    assert [(s.name, s.status) for s in steps] == [("i2v_local", "cancelled")]
    assert "the run ended cancelled" in (steps[0].error or "")
