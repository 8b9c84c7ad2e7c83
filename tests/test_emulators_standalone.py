"""Each emulator run as its own process (``python -m tests.emulators.<name>``), as a developer starts one by hand:
knob flags reach its config, it prints its READY line, it answers on that address, and SIGTERM ends it cleanly."""

from __future__ import annotations

import json
import select
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

START_TIMEOUT_S = 60


def _started(module: str, *flags: str) -> tuple[subprocess.Popen[str], dict[str, Any], str]:
    process = subprocess.Popen([sys.executable, "-m", f"tests.emulators.{module}", "--port", "0", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    try:
        assert select.select([process.stdout], [], [], START_TIMEOUT_S)[0], f"{module} printed nothing"
        tag, _, ready = process.stdout.readline().partition(" ")  # the emulator's first line, or "" if it died
        return process, json.loads(ready), tag
    except (AssertionError, ValueError):
        process.kill()
        raise


def _fal(ready: dict[str, Any]) -> bool:
    trusted = ssl.create_default_context(cafile=ready["ca_path"])
    stats = httpx.get(f"{ready['base_url']}/_admin/stats", verify=trusted, timeout=10)
    return stats.status_code == 200 and stats.json()["requests_total"] == 0


def _swarm(ready: dict[str, Any]) -> bool:
    session = httpx.post(f"{ready['url']}/API/GetNewSession", json={}, timeout=10)
    return session.status_code == 200 and bool(session.json()["session_id"])


def _vast(ready: dict[str, Any]) -> bool:
    def listed(key: str) -> int:
        return httpx.get(f"{ready['url']}/instances/", headers={"Authorization": f"Bearer {key}"},
                         timeout=10).status_code

    return listed("key-from-flag") == 200 and listed("another-key") == 401


CASES = [
    ("fal", ["--processing-s", "7.5", "--fail-submit-422", "yes"], "FAL_EMULATOR_READY",
     lambda ready: ready["config"]["processing_s"] == 7.5 and ready["config"]["fail_submit_422"] is True, _fal),
    ("swarmui", ["--user-id", "flag-user", "--drop-next", "2"], "SWARM_EMULATOR_READY",
     lambda ready: ready["config"]["user_id"] == "flag-user" and ready["config"]["drop_next"] == 2, _swarm),
    ("vastai", ["--api-key", "key-from-flag"], "VAST_EMULATOR_READY",
     lambda ready: ready["api_key"] == "key-from-flag", _vast),
]


@pytest.mark.parametrize(("module", "flags", "tag", "configured", "ask"), CASES, ids=[c[0] for c in CASES])
def test_an_emulator_runs_as_its_own_process(module: str, flags: list[str], tag: str,
                                             configured: Callable[[dict[str, Any]], bool],
                                             ask: Callable[[dict[str, Any]], bool]) -> None:
    process, ready, printed = _started(module, *flags)
    try:
        assert printed == tag and configured(ready), ready
        assert ask(ready)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=START_TIMEOUT_S) == 0
