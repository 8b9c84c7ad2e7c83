"""A flow-run process started before its flow run: Prefect already imported, waiting for one run on stdin.

The warm worker (``reelflow/orchestration/warm_worker.py``) starts
``python -m reelflow.orchestration.warm_engine`` ahead of time. Prefect's
process worker would start ``python -m prefect.runner._workspace_supervisor CONFIG`` for a run; that supervisor
prepares the workspace (pull steps) and then execs ``python -m prefect.engine``: two interpreters, each paying
for ``import prefect``. Here one interpreter that has imported Prefect already receives the supervisor's
command, environment and folder as one JSON line, and does both steps itself. Prefect reads its settings at
import, so whenever the run's settings differ from the ones this process started with, it execs the cold
command instead (same pid), exactly as Prefect would have run it.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import warnings
from pathlib import Path
from typing import Any

ENGINE_MODULE = "prefect.engine"
SUPERVISOR_MODULE = "prefect.runner._workspace_supervisor"
PRELOADED = (ENGINE_MODULE, "prefect.flow_engine", SUPERVISOR_MODULE, "sqlalchemy.orm")  # none reads the environment


def import_time_environment(environment: dict[str, str]) -> dict[str, str]:
    """The variables read while an interpreter starts or imports Prefect (PYTHONPATH is applied later)."""
    return {k: v for k, v in environment.items() if (k.startswith("PREFECT_") and not k.startswith("PREFECT__"))
            or (k.startswith("PYTHON") and k != "PYTHONPATH")}


def settings_unchanged(started_with: dict[str, str]) -> bool:
    """Whether Prefect, imported now with the current environment and folder, would read the same settings."""
    import prefect.context
    from prefect.settings import Settings

    if import_time_environment(dict(os.environ)) != import_time_environment(started_with):
        return False
    return Settings() == prefect.context.GLOBAL_SETTINGS_CONTEXT.settings


def exec_cold(command: list[str], cwd: str, environment: dict[str, str]) -> None:
    print(f"reelflow.orchestration.warm_engine: flow run {environment.get('PREFECT__FLOW_RUN_ID')} needs other "
          "Prefect settings "
          f"or another command; starting it cold: {' '.join(command)}", file=sys.stderr, flush=True)
    os.chdir(cwd)
    os.execvpe(command[0], command, environment)


def _apply(cwd: str, environment: dict[str, str]) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environment)


def prepare_workspace(config_path: str) -> tuple[int, dict[str, Any] | None]:
    """Prefect's workspace supervisor in this process; returns its exit code and the engine launch it chose."""
    import anyio
    from prefect.runner import _workspace_supervisor as supervisor

    launch: dict[str, Any] = {}

    async def capture(command: list[str], *, cwd: Path, environment: dict[str, str]) -> int:
        launch.update(command=command, cwd=str(cwd), environment=environment)
        return 0

    supervisor._launch_engine = capture
    code = anyio.run(supervisor._main_async, [config_path])
    return code, launch or None


def run_engine(cwd: str, environment: dict[str, str]) -> None:
    """``python -m prefect.engine`` in this interpreter: same folder, environment, sys.path and argv."""
    _apply(cwd, environment)
    extra = [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:1] = [cwd, *[p for p in extra if p not in sys.path]]
    sys.argv = [ENGINE_MODULE]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{ENGINE_MODULE}.*found in sys.modules", category=RuntimeWarning)
        runpy.run_module(ENGINE_MODULE, run_name="__main__", alter_sys=True)


def serve(job: dict[str, Any], started_with: dict[str, str]) -> None:
    command: list[str] = job["command"]
    environment: dict[str, str] = job["env"]
    _apply(job["cwd"], environment)
    if not settings_unchanged(started_with) or command[:3] != [sys.executable, "-m", SUPERVISOR_MODULE]:
        exec_cold(command, job["cwd"], environment)
    code, launch = prepare_workspace(command[3])
    if launch is None:
        raise SystemExit(code)
    engine = [sys.executable, "-m", ENGINE_MODULE]
    _apply(launch["cwd"], launch["environment"])
    if launch["command"] != engine or not settings_unchanged(started_with):
        exec_cold(launch["command"], launch["cwd"], launch["environment"])
    run_engine(launch["cwd"], launch["environment"])


def main() -> None:
    started_with = dict(os.environ)
    for module in PRELOADED:  # Prefect reads its settings now
        importlib.import_module(module)

    line = sys.stdin.readline()
    if not line.strip():
        return
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    serve(json.loads(line), started_with)


if __name__ == "__main__":
    main()
