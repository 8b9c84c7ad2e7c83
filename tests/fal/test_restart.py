"""Restart safety: ``reelflow serve --via local`` killed with SIGKILL while runs render and wait, then started again
with the same command, finishes every run; paid fal jobs are polled by their stored id, never submitted twice, and
Prefect's states agree with the store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path
from uuid import UUID

import httpx
from prefect.client.schemas.objects import StateType

from tests.emulators.fal import FalEmulator
from tests.support.cli import REELFLOW, ROOT
from tests.support.fal_pipeline import Env, prefect
from tests.support.polling import wait_until
from tests.support.store import store_rows
from tests.support.web_api import auth_headers

RUNS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(env: Env, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen([*REELFLOW, "serve", "--via", "local", "--workers", "4", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text()[-4000:]
        try:
            return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 120, "reelflow serve to answer")
    return process


def _statuses(run_ids: list[str]) -> dict[str, str]:
    marks = ",".join("?" * len(run_ids))
    return dict(store_rows(f"SELECT id, status FROM runs WHERE id IN ({marks})", *run_ids))


def _state(flow_run_id: str) -> StateType:
    return prefect(lambda client: client.read_flow_run(UUID(flow_run_id))).state.type


def test_serve_killed_mid_render_finishes_every_run_on_restart_without_a_second_submit(
        emu: FalEmulator, env: Env, photo: Path, tmp_path: Path) -> None:
    emu.configure(processing_s=600.0)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    first = _serve(env, port, tmp_path / "serve.log")
    try:
        with httpx.Client(base_url=url, timeout=30, headers=auth_headers()) as client:
            image = client.post("/api/uploads", files={"file": ("p.png", photo.read_bytes(), "image/png")})
            assert image.status_code == 201, image.text
            run_ids = []
            for number in range(RUNS):
                body = {"model": "wan-2.5-i2v", "image": image.json()["image"], "prompt": f"restart {number}",
                        "duration": 5.0, "resolution": "480p", "seed": 7000 + number}
                created = client.post("/api/runs", json=body)
                assert created.status_code in (200, 201, 202), created.text
                run_ids.append(created.json()["run_id"])
        wait_until(lambda: emu.stats()["submits"]["total"] == 2 and len({run for (run,) in store_rows(
            "SELECT run_id FROM steps WHERE name = 'i2v_fal' AND provider_job_id IS NOT NULL") if run in run_ids}) >= 2,
                   120, "two fal jobs submitted and their ids stored (the fal limit is 2)")
        wait_until(lambda: sorted(_statuses(run_ids).values()).count("running") >= 4, 60, "four runs rendering")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)

    before = _statuses(run_ids)
    assert sorted(before.values()) == ["queued"] * 2 + ["running"] * 4, before
    paid = dict(store_rows("SELECT run_id, provider_job_id FROM steps WHERE name = 'i2v_fal' "
                           "AND provider_job_id IS NOT NULL"))
    paid = {run: job for run, job in paid.items() if run in run_ids}
    assert len(paid) == 2
    old_flow_runs = {run: flow for run, flow in store_rows(
        f"SELECT id, prefect_flow_run_id FROM runs WHERE id IN ({','.join('?' * RUNS)})", *run_ids) if flow}
    assert all(_state(flow) == StateType.RUNNING for flow in old_flow_runs.values()), "Prefect still says Running"

    emu.configure(processing_s=1.0)
    assert emu.finish_running() == 2, "the paid jobs finished while nobody watched"
    second = _serve(env, port, tmp_path / "serve.log")
    try:
        wait_until(lambda: all(s in ("completed", "failed", "cancelled") for s in _statuses(run_ids).values()),
                   240, "every run to end after the restart")
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=60)

    assert _statuses(run_ids) == dict.fromkeys(run_ids, "completed")
    stats = emu.stats()
    assert stats["submits"]["total"] == RUNS, "a job was submitted twice"
    jobs = dict(store_rows(f"SELECT run_id, provider_job_id FROM steps WHERE name = 'i2v_fal' AND status = "
                           f"'completed' AND run_id IN ({','.join('?' * RUNS)})", *run_ids))
    assert len(set(jobs.values())) == RUNS and all(jobs[run] == job for run, job in paid.items())
    for run_id, flow_run_id in store_rows(
            f"SELECT id, prefect_flow_run_id FROM runs WHERE id IN ({','.join('?' * RUNS)})", *run_ids):
        assert _state(flow_run_id) == StateType.COMPLETED, run_id
        if run_id in old_flow_runs:
            assert old_flow_runs[run_id] != flow_run_id and _state(old_flow_runs[run_id]) == StateType.CRASHED
    events = store_rows("SELECT run_id, message FROM events WHERE kind = 'reconcile'")
    reconciled = {run: message for run, message in events if run in run_ids}
    assert set(reconciled) == set(run_ids)
    assert all("polling provider job" in reconciled[run] for run in paid)
