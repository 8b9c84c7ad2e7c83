"""``reelflow.submit`` from a user's plain script (a fresh interpreter, no PREFECT_* variables): it uses the
background Prefect server REELFLOW_HOME records, never starts Prefect's throwaway ephemeral server, and returns fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from reelflow.orchestration import prefect_server
from reelflow.settings import reload_settings
from tests.support.cli import ROOT
from tests.support.deployments import QUICK

SCRIPT = r'''
import json, os, sys, time
from pathlib import Path

def descendants(pid):
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(cmdline)
            found.extend(descendants(int(stat.parent.name)))
    return found

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
    assert not [c for c in result["children"] if "uvicorn" in c or "prefect" in c], result["children"]
    assert result["status"] == "completed"
    print(f"reelflow.submit() from a plain script returned after {result['submit_s']:.3f} s")
