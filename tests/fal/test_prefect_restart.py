"""The Prefect server killed (SIGKILL) while fal runs hold slots and another waits for one, then started again on
its port as ``reelflow up`` does: every run completes, each fal job is submitted once, and Prefect agrees."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from reelflow.orchestration import prefect_server
from reelflow.orchestration.server_secrets import basic_authorization
from tests.emulators.fal import FalEmulator
from tests.support.cli import REELFLOW, ROOT
from tests.support.fal_pipeline import Env
from tests.support.polling import wait_until

RESTART = "from reelflow.orchestration import prefect_server; print(prefect_server.start_server().url)"


def _rows(home: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(home / "reelflow.db") as db:
        return db.execute(sql, args).fetchall()


def _dead(pid: int) -> bool:
    """Gone, or a zombie its parent (``reelflow serve``, which started the server) has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_fal_runs_ride_out_a_prefect_server_killed_and_restarted(emu: FalEmulator, env: Env, photo: Path,
                                                                 tmp_path: Path) -> None:
    emu.configure(processing_s=20.0)  # the jobs outlast the server's death and restart
    home = tmp_path / "home"
    env = {**{k: v for k, v in env.items() if not k.startswith("PREFECT_")}, "REELFLOW_HOME": str(home),
           "REELFLOW_PREFECT_PORT": "0", "REELFLOW_FAL_CONCURRENCY": "2"}
    port = prefect_server.free_port(0, "the test API")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen([*REELFLOW, "serve", "--via", "local", "--workers", "4", "--port", str(port)],
                                 cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert serve.poll() is None, log.read_text()[-4000:]
            try:
                return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 120, "reelflow serve to answer")
        token = (home / "api-token").read_text().strip()
        with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
            image = client.post("/api/uploads", files={"file": ("p.png", photo.read_bytes(), "image/png")})
            assert image.status_code == 201, image.text
            run_ids = []
            for number in range(3):
                created = client.post("/api/runs", json={
                    "model": "wan-2.5-i2v", "image": image.json()["image"], "prompt": f"outage {number}",
                    "duration": 5.0, "resolution": "480p", "seed": 9100 + number})
                assert created.status_code == 201, created.text
                run_ids.append(created.json()["run_id"])
        wait_until(lambda: emu.stats()["submits"]["total"] == 2 and len(_rows(
            home, "SELECT id FROM steps WHERE slot_lease_id IS NOT NULL")) == 2, 120,
                   "two runs holding the two fal slots")
        wait_until(lambda: _rows(home, "SELECT count(*) FROM events WHERE message LIKE 'waiting for a free%'")[0][0],
                   60, "the third run waiting for a slot")

        server = json.loads((home / "run" / "prefect-server.json").read_text())
        os.killpg(server["pid"], signal.SIGKILL)  # the server and its uvicorn child, as a crash takes them
        wait_until(lambda: _dead(server["pid"]), 30, "the Prefect server to die")
        restarted = subprocess.run([sys.executable, "-c", RESTART], cwd=ROOT, env=env, capture_output=True,
                                   text=True, timeout=120)
        assert restarted.returncode == 0, restarted.stderr[-3000:]
        assert restarted.stdout.strip() == server["url"], "the server came back on another port"

        def ended() -> dict[str, str] | None:
            found = dict(_rows(home, f"SELECT id, status FROM runs WHERE id IN ({','.join('?' * 3)})", *run_ids))
            return found if all(s in ("completed", "failed", "cancelled") for s in found.values()) else None

        statuses = wait_until(ended, 300, "every run to end")
        errors = _rows(home, "SELECT id, error FROM runs WHERE status != 'completed'")
        assert set(statuses.values()) == {"completed"}, (statuses, errors, log.read_text()[-3000:])
        assert emu.stats()["submits"]["total"] == 3, "a fal job was submitted twice"
        auth = basic_authorization((home / "secrets" / "prefect-auth").read_text().strip())
        for (flow_run_id,) in _rows(home, "SELECT prefect_flow_run_id FROM runs"):
            state = httpx.get(f"{server['url']}/api/flow_runs/{flow_run_id}", headers=auth, timeout=10).json()
            assert state["state_type"] == "COMPLETED", state
    finally:
        serve.terminate()
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(30)
        subprocess.run([*REELFLOW, "server", "stop"], cwd=ROOT, env=env, capture_output=True, timeout=60)
