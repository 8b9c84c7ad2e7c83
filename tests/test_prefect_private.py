"""The Prefect server reelflow starts is private: no Block secret for a process without the auth string or for
another origin, the encryption key outside its database, and reelflow's own CLI still works against it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from reelflow.orchestration import prefect_server, server_secrets
from reelflow.settings import reload_settings

SECRET = "vast-key-that-must-not-leak-7f3a"
EVIL = "https://evil.example"
ATTACKER = """
import json, sys, httpx
api = sys.argv[1]
url = f"{api}/block_documents/filter"
preflight = httpx.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type"}, timeout=10)
post = httpx.post(url, json={"include_secrets": True}, headers={"Origin": "https://evil.example"}, timeout=10)
print(json.dumps({"preflight": [preflight.status_code, dict(preflight.headers)],
                  "post": [post.status_code, dict(post.headers), post.text]}))
"""


def _user_env(**extra: str) -> dict[str, str]:
    """A user's shell: this session's REELFLOW_HOME and nothing Prefect-specific."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, **extra}


def test_block_secrets_are_refused_without_the_auth_string_and_to_other_origins(home: Path) -> None:
    env = _user_env()
    done = subprocess.run([sys.executable, "-m", "reelflow.cli.main", "gpu", "set", "--name", "private-check",
                           "--provider", "vastai", "--vastai-instance-id", "1", "--vastai-api-key", SECRET, "--json"],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run([sys.executable, "-m", "reelflow.cli.main", "gpu", "show", "--name", "private-check",
                            "--json"], capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert shown.returncode == 0 and SECRET not in shown.stdout, shown.stdout + shown.stderr

    server = prefect_server.recorded_server(reload_settings())
    assert server is not None
    attack = subprocess.run([sys.executable, "-c", ATTACKER, server.api_url], capture_output=True, text=True,
                            timeout=60, env=_user_env(), stdin=subprocess.DEVNULL)
    assert attack.returncode == 0, attack.stderr
    seen = json.loads(attack.stdout)
    preflight_status, preflight_headers = seen["preflight"]
    assert preflight_status >= 400 and "access-control-allow-origin" not in preflight_headers, seen["preflight"]
    post_status, post_headers, body = seen["post"]
    assert post_status == 401, seen["post"]
    assert SECRET not in body and post_headers.get("access-control-allow-origin") not in ("*", EVIL)

    import httpx

    auth = server_secrets.auth_string(reload_settings())
    owner = httpx.post(f"{server.api_url}/block_documents/filter", json={"include_secrets": True}, timeout=10,
                       headers=server_secrets.basic_authorization(auth))
    assert owner.status_code == 200 and SECRET in owner.text, "the refusal above proves nothing without the block"


def test_secrets_live_in_reelflow_home_0600_and_the_key_is_not_in_prefects_database(home: Path) -> None:
    folder = home / "secrets"
    for name in (server_secrets.AUTH_FILE, server_secrets.KEY_FILE):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    Fernet((folder / server_secrets.KEY_FILE).read_text().strip().encode())  # a valid key
    with sqlite3.connect(reload_settings().prefect_home / "prefect.db") as db:
        keys = [row[0] for row in db.execute("SELECT key FROM configuration")]
    assert "ENCRYPTION_KEY" not in keys


def test_a_key_prefect_stored_in_its_database_is_moved_out_so_old_blocks_still_decrypt(tmp_path: Path) -> None:
    os.environ["REELFLOW_HOME"], before = str(tmp_path / "home"), os.environ["REELFLOW_HOME"]
    try:
        settings = reload_settings()
        settings.prefect_home.mkdir(parents=True)
        old_key = Fernet.generate_key().decode()
        with sqlite3.connect(settings.prefect_home / "prefect.db") as db:
            db.execute("CREATE TABLE configuration (key VARCHAR PRIMARY KEY, value JSON)")
            db.execute("INSERT INTO configuration VALUES ('ENCRYPTION_KEY', ?)", (json.dumps({"fernet_key": old_key}),))
        assert server_secrets.encryption_key(settings) == old_key
        assert server_secrets.encryption_key(settings) == old_key, "a second start keeps the key"
        with sqlite3.connect(settings.prefect_home / "prefect.db") as db:
            assert db.execute("SELECT count(*) FROM configuration").fetchone() == (0,)
    finally:
        os.environ["REELFLOW_HOME"] = before
        reload_settings()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reelflow.cli.main", *args], capture_output=True, text=True,
                          timeout=180, env=_user_env(COLUMNS="300"), stdin=subprocess.DEVNULL)


def test_status_runs_and_server_status_link_to_the_background_servers_ui(tmp_path: Path) -> None:
    from tests.support.files import make_image

    image = make_image(tmp_path / "link.png")
    done = _cli("run", "--model", "local-kenburns", "--image", str(image), "--prompt", "link", "--duration", "0.5",
                "--fps", "8", "--resolution", "160x120", "--seed", "11", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    run = json.loads(done.stdout)
    server = prefect_server.recorded_server(reload_settings())
    assert server is not None and not server.url.endswith(":4200"), "this session's server runs on a random port"
    expected = f"{server.url}/runs/flow-run/{run['prefect_flow_run_id']}"

    status = _cli("status", run["run_id"], "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["prefect_url"] == expected, status.stdout
    listed = _cli("runs", "--json", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    assert {r["run_id"]: r["prefect_url"] for r in json.loads(listed.stdout)["runs"]}[run["run_id"]] == expected
    shown = _cli("server", "status")
    assert shown.returncode == 0 and f"Prefect UI:  {server.url}" in shown.stdout, shown.stdout
    assert f"export PREFECT_API_URL={server.api_url} PREFECT_API_AUTH_STRING=" in shown.stdout
    assert server_secrets.auth_string(reload_settings()) not in shown.stdout, "the secret itself is never printed"


RESTART_SCRIPT = """
import json, os, signal, sys, httpx
from reelflow.orchestration import prefect_server
from reelflow.settings import get_settings

first = prefect_server.start_server()
headers = prefect_server.api_headers()
created = httpx.post(f"{first.api_url}/v2/concurrency_limits/", json={"name": "leak", "limit": 2}, headers=headers)
assert created.status_code == 201, created.text
taken = httpx.post(f"{first.api_url}/v2/concurrency_limits/increment-with-lease", headers=headers,
                   json={"names": ["leak"], "slots": 2, "mode": "concurrency", "lease_duration": 600})
assert taken.status_code == 200, taken.text
os.kill(first.pid, signal.SIGKILL)
while prefect_server.pid_alive(first.pid):
    pass
second = prefect_server.start_server()
limit = httpx.post(f"{second.api_url}/v2/concurrency_limits/filter", json={}, headers=headers).json()
print(json.dumps({"first": first.url, "second": second.url, "active": limit[0]["active_slots"]}))
prefect_server.stop_server()
"""


def test_a_killed_server_comes_back_on_its_port_without_the_slots_its_leases_held(tmp_path: Path) -> None:
    """The port is still in TIME_WAIT (clients were connected) and the leases lived in the dead server's memory."""
    env = _user_env(REELFLOW_HOME=str(tmp_path / "home"), REELFLOW_PREFECT_PORT="0")
    done = subprocess.run([sys.executable, "-c", RESTART_SCRIPT], capture_output=True, text=True, timeout=240,
                          env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["second"] == seen["first"], "clients started by the dead server remember its port"
    assert seen["active"] == 0, "the slots held by leases the dead server forgot would stay taken for good"
