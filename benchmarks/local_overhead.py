"""Wall time of the offline demo and the orchestration overhead around the render.

    .venv/bin/python benchmarks/local_overhead.py [--repeat 3]

Scenarios, each in a fresh REELFLOW_HOME: cold (no server: the CLI starts one), warm (server
running, forced re-render), cached (identical run returned from the store), and Prefect's
ephemeral mode. Overhead = wall time of the command minus the time spent inside ``i2v_local``.
Target (issue 2): warm overhead <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

CLI = [sys.executable, "-m", "reelflow.cli.main"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "REELFLOW_"))}
    return {**env, "REELFLOW_HOME": str(home), **extra}


def _demo(env: dict[str, str], *flags: str) -> tuple[float, dict]:
    start = time.perf_counter()
    done = subprocess.run([*CLI, "demo", "--json", *flags], env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"demo failed: {done.stdout}\n{done.stderr}")
    return wall, json.loads(done.stdout)


def _render_seconds(home: Path, run_id: str) -> float:
    with sqlite3.connect(home / "reelflow.db") as db:
        started, finished = db.execute(
            "SELECT started_at, finished_at FROM steps WHERE run_id = ? AND name = 'i2v_local'", (run_id,)
        ).fetchone()
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def _row(name: str, wall: float, render: float | None) -> None:
    overhead = f"{wall - render:6.2f}" if render is not None else "     -"
    render_text = f"{render:6.2f}" if render is not None else "     -"
    print(f"{name:<34} wall {wall:6.2f} s   render {render_text} s   overhead {overhead} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reelflow-bench-"))

    home = root / "server"
    env = _env(home, REELFLOW_PREFECT_PORT="0")
    try:
        wall, result = _demo(env)
        _row("cold (starts the Prefect server)", wall, _render_seconds(home, result["run_id"]))
        walls, overheads = [], []
        for _ in range(args.repeat):
            wall, result = _demo(env, "--force")
            render = _render_seconds(home, result["run_id"])
            walls.append(wall)
            overheads.append(wall - render)
            _row("warm (server running, --force)", wall, render)
        wall, result = _demo(env)
        assert result["cached"] is True
        _row("cached (identical run)", wall, None)
    finally:
        subprocess.run([*CLI, "server", "stop"], env=env, capture_output=True, check=False)

    home = root / "ephemeral"
    wall, result = _demo(_env(home, REELFLOW_PREFECT_MODE="ephemeral"))
    _row("ephemeral mode (no server)", wall, _render_seconds(home, result["run_id"]))
    print(f"\nwarm median: wall {statistics.median(walls):.2f} s, "
          f"overhead {statistics.median(overheads):.2f} s (target <= 3 s)")


if __name__ == "__main__":
    main()
