"""Helpers for pipeline tests against the fal emulator: flows run in subprocesses whose environment
points fal-client at the emulator (hosts read at import, CA through SSL_CERT_FILE), while the store
and the Prefect server are the test session's (the fixtures are in ``tests/fal/conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from tests.emulators.fal import FalEmulator
from tests.support.cli import REELFLOW, ROOT
from tests.support.polling import wait_until

WAN = "fal-ai/wan-25-preview/image-to-video"
FLUX = "fal-ai/flux/schnell"
Env = dict[str, str]


def fal_env(emu: FalEmulator, **extra: str) -> Env:
    drop = ("FAL_", "SSL_CERT_", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **emu.env(), **extra}


def wan_args(image: Path, prompt: str, *extra: str) -> list[str]:
    return ["run", "--model", "wan-2.5-i2v", "--image", str(image), "--prompt", prompt, "--resolution", "480p",
            *extra]


def cli(env: Env, *args: str, timeout: float = 180) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([*REELFLOW, *args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}") from exc


def start_cli(env: Env, *args: str) -> subprocess.Popen[str]:
    """The CLI as a flow process of its own (own session, so it can be signalled as a group)."""
    return subprocess.Popen([*REELFLOW, *args, "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, start_new_session=True)


def start_runs(env: Env, specs: list[dict[str, Any]]) -> subprocess.Popen[str]:
    """One flow process running ``specs`` concurrently (``tests/support/fal_runs.py``)."""
    return subprocess.Popen([sys.executable, "-m", "tests.support.fal_runs", json.dumps(specs)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def runs_result(process: subprocess.Popen[str], timeout: float = 180) -> list[dict[str, Any]]:
    out, err = process.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"runner failed ({process.returncode}):\n{out}\n{err[-4000:]}"
    return json.loads(lines[-1].removeprefix("RESULT "))


def kill_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    os.killpg(process.pid, sig)
    process.communicate(timeout=60)


@contextmanager
def served_flow(env: Env, name: str) -> Iterator[str]:
    """``video_pipeline`` served by a Prefect runner in its own process; yields the deployment's name."""
    code = f"from flows.video_pipeline import video_pipeline\nvideo_pipeline.serve(name={name!r}, limit=1)\n"
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**env, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    deployment = f"video_pipeline/{name}"

    async def ready(client: Any) -> bool:
        try:
            await client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            return False
        return True

    try:
        wait_until(lambda: runner.poll() is None and prefect(ready), what="the runner to serve the deployment")
        yield deployment
    finally:
        runner.terminate()
        _, err = runner.communicate(timeout=60)
        if runner.returncode not in (0, -signal.SIGTERM):
            print(err[-4000:])


def prefect(call: Callable[[Any], Any]) -> Any:
    """Run ``await call(client)`` against the session's Prefect server."""
    async def go() -> Any:
        async with get_client() as client:
            return await call(client)

    return asyncio.run(go())
