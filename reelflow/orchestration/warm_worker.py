"""A Prefect process worker that keeps one flow-run interpreter started ahead of time
(``reelflow.orchestration.warm_engine``).

Prefect 3.9's process worker starts ``python -m prefect.runner._workspace_supervisor CONFIG`` for every flow run
through ``prefect.runner._starter_engine.run_process``, the seam Prefect documents for replacing how processes are
started. This worker replaces that function while it runs: for the supervisor command it hands the command, the
complete environment and the folder Prefect built to the waiting interpreter instead of starting a new one, and
starts the next one. Everything else (control channel, process-group kill, exit code, output streaming) is
Prefect's own code working on that process. ``type`` stays ``"process"``, so pools and deployments do not change.

    python -m reelflow.orchestration.warm_worker --pool reelflow-local --name NAME [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any

import anyio
import anyio.abc
from prefect.runner import _starter_engine
from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS, get_current_settings
from prefect.utilities.processutils import consume_process_output, sanitize_subprocess_env
from prefect.workers.process import ProcessWorker

from reelflow.orchestration.warm_engine import SUPERVISOR_MODULE

WARM_COMMAND = [sys.executable, "-m", "reelflow.orchestration.warm_engine"]
COLD_RUN_PROCESS = _starter_engine.run_process


class WarmInterpreters:
    """At most one idle ``reelflow.orchestration.warm_engine`` process; ``take`` hands it a run and starts the
    next one."""

    def __init__(self) -> None:
        self.idle: anyio.abc.Process | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="reelflow-warm-")

    def _environment(self) -> dict[str, str]:
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
        return {k: v for k, v in sanitize_subprocess_env({**os.environ, **settings}).items() if v is not None}

    async def _open(self) -> anyio.abc.Process:
        return await anyio.open_process(WARM_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=self._environment(), cwd=self._folder.name,
                                        start_new_session=True)

    async def spawn(self) -> None:
        """Start the idle interpreter unless another run's hand-off has started one meanwhile."""
        process = await self._open()
        if self.idle is None:
            self.idle = process
        else:
            await self._discard(process)

    @staticmethod
    def accepts(command: list[str], stream_output: Any, kwargs: dict[str, Any]) -> bool:
        """The supervisor launch of a posix process worker with streamed output, and nothing else."""
        return (sys.platform != "win32" and stream_output is True and command[:3] == [sys.executable, "-m",
                                                                                        SUPERVISOR_MODULE]
                and kwargs.get("start_new_session") is True and set(kwargs) <= {"env", "cwd", "start_new_session"})

    async def take(self, command: list[str], env: dict[str, str | None], cwd: Any) -> anyio.abc.Process:
        job = json.dumps({"command": command, "env": {k: v for k, v in env.items() if v is not None},
                          "cwd": str(cwd) if cwd is not None else os.getcwd()}) + "\n"
        for _ in range(2):
            process, self.idle = self.idle, None
            if process is None or process.returncode is not None:
                await self._discard(process)
                process = await self._open()
            assert process is not None and process.stdin is not None
            try:
                await process.stdin.send(job.encode())
                await process.stdin.aclose()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self._discard(process)
                continue
            await self.spawn()
            return process
        raise RuntimeError("could not hand the flow run to a warm interpreter")

    @staticmethod
    async def _discard(process: anyio.abc.Process | None) -> None:
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()

    async def close(self) -> None:
        process, self.idle = self.idle, None
        await self._discard(process)
        self._folder.cleanup()


# Registering a second "process" worker type replaces Prefect's in this process only, which is what we want.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Type 'WarmProcessWorker'")

    class WarmProcessWorker(ProcessWorker):
        """``ProcessWorker`` whose flow-run processes come from ``WarmInterpreters``."""

        type = "process"

        interpreters: WarmInterpreters | None = None

        async def setup(self) -> None:
            await super().setup()
            self.interpreters = WarmInterpreters()
            await self.interpreters.spawn()
            _starter_engine.run_process = self._run_process

        async def teardown(self, *exc_info: Any) -> None:
            _starter_engine.run_process = COLD_RUN_PROCESS
            if self.interpreters is not None:
                await self.interpreters.close()
            await super().teardown(*exc_info)

        async def _run_process(self, command: list[str], *, stream_output: Any = False, task_status: Any = None,
                               task_status_handler: Any = None, **kwargs: Any) -> anyio.abc.Process:
            """``prefect.utilities.processutils.run_process``, with the process taken from the warm interpreters."""
            if self.interpreters is None or not self.interpreters.accepts(command, stream_output, kwargs):
                return await COLD_RUN_PROCESS(command, stream_output=stream_output, task_status=task_status,
                                              task_status_handler=task_status_handler, **kwargs)
            process = await self.interpreters.take(command, kwargs["env"], kwargs.get("cwd"))
            try:
                async with process:
                    if task_status is not None:
                        task_status.started(task_status_handler(process) if task_status_handler else process.pid)
                    await consume_process_output(process, stdout_sink=sys.stdout, stderr_sink=sys.stderr)
                    await process.wait()
            finally:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
            return process


async def serve(pool: str, name: str | None, limit: int | None) -> None:
    worker = WarmProcessWorker(name=name, work_pool_name=pool, limit=limit,
                               heartbeat_interval_seconds=int(PREFECT_WORKER_HEARTBEAT_SECONDS.value()))
    with contextlib.suppress(asyncio.CancelledError):
        await worker.start(printer=print)


def main() -> None:
    from prefect.utilities.processutils import setup_signal_handlers_worker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--name")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    setup_signal_handlers_worker(os.getpid(), "the warm process worker", print)
    with contextlib.suppress(KeyboardInterrupt):  # how the signal handlers above stop the worker
        asyncio.run(serve(args.pool, args.name, args.limit))


if __name__ == "__main__":
    main()
