"""Helpers for the GPU tests: a saved GpuEndpoint block, specs, store queries, polling, subprocesses."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.settings import get_settings
from tests.emulators.vastai import API_KEY, DEFAULT_INSTANCE_ID, PORTAL_TOKEN

ROOT = Path(__file__).resolve().parent.parent
WAN = "wan-2.2-i2v-comfyui"
FAST_ENV = {"REELFLOW_COMFYUI_POLL_INTERVAL_S": "0.3", "REELFLOW_SWARMUI_POLL_INTERVAL_S": "0.2"}

__all__ = ["API_KEY", "DEFAULT_INSTANCE_ID", "FAST_ENV", "PORTAL_TOKEN", "ROOT", "WAN"]


def save_gpu(**fields: Any) -> GpuEndpoint:
    """Save the block under the configured name, replacing whatever a previous test saved."""
    gpu = GpuEndpoint(**fields)
    gpu.save(get_settings().gpu_block, overwrite=True)
    return gpu


async def asave_gpu(**fields: Any) -> GpuEndpoint:
    """``save_gpu`` for async tests (``Block.save`` returns an awaitable inside an event loop)."""
    gpu = GpuEndpoint(**fields)
    await gpu.asave(get_settings().gpu_block, overwrite=True)
    return gpu


def wan_spec(image: Path, **extra: Any) -> dict[str, Any]:
    return {"model": WAN, "image": str(image), "prompt": "a slow pan over hills", "frames": 17, "fps": 16,
            "resolution": "256x256", "seed": 11, **extra}


def store_rows(sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(get_settings().home / "reelflow.db") as db:
        return db.execute(sql, args).fetchall()


def step_row(run_id: str, name: str) -> dict[str, Any]:
    rows = store_rows("SELECT status, provider_job_id, detail, error, cost_usd FROM steps WHERE run_id = ? AND "
                      "name = ? ORDER BY id DESC LIMIT 1", run_id, name)
    status, job, detail, error, cost = rows[0]
    return {"status": status, "job": job, "detail": json.loads(detail) if detail else None, "error": error,
            "cost": cost}


def event_kinds(run_id: str) -> list[tuple[str, str]]:
    return [(k, m) for k, m in store_rows("SELECT kind, message FROM events WHERE run_id = ? ORDER BY id", run_id)]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll a condition (the state of another process or thread); fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def when(condition: Callable[[], bool], action: Callable[[], None], timeout: float = 30.0) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``condition`` holds (e.g. restart the emulator mid-job)."""
    def body() -> None:
        wait_for(condition, timeout)
        action()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def python(code: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A Python subprocess in the repository with this session's environment (REELFLOW_HOME, Prefect API),
    its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
