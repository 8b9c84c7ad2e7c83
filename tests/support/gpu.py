"""Helpers for the GPU tests: a saved GpuEndpoint block, the Wan spec, short polls, a Python subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.gpu.endpoint import save_endpoint
from tests.support.cli import ROOT

WAN = "wan-2.2-i2v-comfyui"
FAST_ENV = {"REELFLOW_COMFYUI_POLL_INTERVAL_S": "0.3", "REELFLOW_SWARMUI_POLL_INTERVAL_S": "0.2"}


def save_gpu(**fields: Any) -> GpuEndpoint:
    """Save the block under the configured name, replacing whatever a previous test saved."""
    gpu = GpuEndpoint(**fields)
    asyncio.run(save_endpoint(gpu))
    return gpu


async def asave_gpu(**fields: Any) -> GpuEndpoint:
    """``save_gpu`` for async tests."""
    gpu = GpuEndpoint(**fields)
    await save_endpoint(gpu)
    return gpu


def wan_spec(image: Path, **extra: Any) -> dict[str, Any]:
    return {"model": WAN, "image": str(image), "prompt": "a slow pan over hills", "frames": 17, "fps": 16,
            "resolution": "256x256", "seed": 11, **extra}


def python(code: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A Python subprocess in the repository with this session's environment (REELFLOW_HOME, Prefect API),
    its output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
