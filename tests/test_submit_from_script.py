"""``reelflow.submit`` from a user's plain script (a fresh interpreter, no PREFECT_* variables): it uses the
background Prefect server REELFLOW_HOME records, never starts Prefect's throwaway ephemeral server, and returns fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx

from reelflow.orchestration import prefect_server
from reelflow.settings import reload_settings
from reelflow.store import repo
from tests.support.cli import REELFLOW, ROOT
from tests.support.deployments import QUICK
from tests.support.polling import wait_until
from tests.support.processes import descendants, ephemeral_prefect_servers, prefect_servers
from tests.support.web_api import answers, auth_headers

SCRIPT = r'''
import json, os, sys, time
from tests.support.processes import descendants
import reelflow
imported_prefect = "prefect" in sys.modules
started = time.monotonic()
run_id = reelflow.submit(json.loads(sys.argv[1]), force=True)
submit_s = time.monotonic() - started
children = descendants(os.getpid())
from prefect.settings import get_current_settings
api_url = get_current_settings().api.url
ended = reelflow.wait(run_id, timeout=120)
children += descendants(os.getpid())
print("RESULT " + json.dumps({"imported_prefect": imported_prefect, "submit_s": submit_s, "children": children,
                              "api_url": api_url, "status": ended.status}))
'''


def test_submit_from_a_plain_script_uses_the_background_server(tmp_path) -> None:
    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({**QUICK, "image": image})], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    server = prefect_server.running_server(reload_settings())
    assert server is not None
    assert result["imported_prefect"] is False, "importing reelflow must not import Prefect"
    assert result["api_url"] == server.api_url, "Prefect talks to the background server REELFLOW_HOME records"
    assert not prefect_servers(result["children"]), result["children"]
    assert result["status"] == "completed"
    print(f"reelflow.submit() from a plain script returned after {result['submit_s']:.3f} s")


def test_serve_rendering_a_run_starts_no_extra_prefect_server(tmp_path) -> None:
    """`reelflow serve` (no PREFECT_* variables) renders with the background server: no ephemeral one appears."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    port = prefect_server.free_port(0, "the test API")
    with (tmp_path / "serve.log").open("wb") as log:
        serve = subprocess.Popen([sys.executable, "-m", "reelflow.cli.main", "serve", "--port", str(port), "--via",
                                  "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base), 60, "reelflow serve to answer")
        image = (ROOT / "reelflow" / "assets" / "sample.jpg").read_bytes()
        uploaded = httpx.post(f"{base}/api/uploads", files={"file": ("s.jpg", image, "image/jpeg")}, timeout=30,
                              headers=auth_headers())
        created = httpx.post(f"{base}/api/runs", json={**QUICK, "image": uploaded.json()["image"], "force": True},
                             timeout=30, headers=auth_headers())
        assert created.status_code == 201, created.text
        run_id = created.json()["run_id"]
        seen: list[str] = []

        def ended() -> bool:
            seen.extend(descendants(serve.pid))
            shown = httpx.get(f"{base}/api/runs/{run_id}", timeout=10, headers=auth_headers()).json()
            return shown["status"] in repo.FINISHED

        wait_until(ended, 120, "the run to end")
        shown = httpx.get(f"{base}/api/runs/{run_id}", timeout=10, headers=auth_headers()).json()
        assert shown["status"] == "completed"
        assert not prefect_servers(seen + descendants(serve.pid)), seen
    finally:
        serve.terminate()
        serve.wait(30)


def test_the_first_run_of_a_fresh_home_starts_the_background_server_and_no_ephemeral_one(tmp_path) -> None:
    """`reelflow run` in a new REELFLOW_HOME with no PREFECT_* variables, as a new user's first run goes: the CLI
    starts the background server, and no Prefect ephemeral server (Prefect imported before the server was chosen)
    is left behind. Output goes to files: a leftover server holding a pipe open would hang the test instead."""
    home = tmp_path / "home"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, "REELFLOW_HOME": str(home),
           "REELFLOW_PREFECT_PORT": "0", "PYTHONPATH": str(ROOT)}
    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    try:
        with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
            done = subprocess.run([*REELFLOW, "run", "--model", "local-kenburns", "--image", image, "--prompt", "drift",
                                   "--duration", "0.5", "--fps", "8", "--resolution", "96x64"], env=env, cwd=tmp_path,
                                  stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=300)
        said = (tmp_path / "err").read_text()
        assert done.returncode == 0, said[-3000:]
        assert "starting the local Prefect server" in said
        assert ephemeral_prefect_servers(home) == [], "an ephemeral Prefect server outlived `reelflow run`"
    finally:
        subprocess.run([*REELFLOW, "server", "stop"], env=env, capture_output=True, timeout=60)
        for pid in ephemeral_prefect_servers(home):
            os.kill(pid, 9)
