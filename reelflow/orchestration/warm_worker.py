"""A Prefect process worker that keeps one flow-run interpreter started ahead of time
(``reelflow.orchestration.warm_engine``).

Prefect 3.9's process worker starts ``python -m prefect.runner._workspace_supervisor CONFIG`` for every flow run
through ``prefect.runner._starter_engine.run_process``, the seam Prefect documents for replacing how processes are
started. This worker replaces that function while it runs: for the supervisor command it hands the command, the
complete environment and the folder Prefect built to the waiting interpreter instead of starting a new one, and
starts the next one. Everything else (control channel, process-group kill, exit code, output streaming) is
Prefect's own code working on that process. ``type`` stays ``"process"``, so pools and deployments do not change.

Those seams are private to Prefect (hence ``prefect<3.10``): at start the worker checks that each one it patches
or calls exists with the signature it expects (``PREFECT_INTERNALS``); if one does not, it prints one warning and
becomes Prefect's plain process worker, the one ``REELFLOW_WARM_WORKER=0`` starts.

    python -m reelflow.orchestration.warm_worker --pool reelflow-local --name NAME [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any

import anyio
import anyio.abc
import prefect
from prefect.settings import PREFECT_WORKER_HEARTBEAT_SECONDS, get_current_settings
from prefect.utilities import processutils
from prefect.workers.process import ProcessWorker

from reelflow.orchestration import stack
from reelflow.orchestration.warm_engine import SUPERVISOR_MODULE

WARM_COMMAND = [sys.executable, "-m", "reelflow.orchestration.warm_engine"]
STARTER_MODULE = "prefect.runner._starter_engine"
# What the warm worker replaces or calls, and warm_engine in the interpreters it starts, with the parameters each
# must have (names and kinds; defaults and annotations may change). Every one is an ``async def``.
PREFECT_INTERNALS = {
    f"{STARTER_MODULE}.run_process": "(command, *, stream_output, task_status, task_status_handler, **kwargs)",
    f"{SUPERVISOR_MODULE}._launch_engine": "(command, *, cwd, environment)",
    f"{SUPERVISOR_MODULE}._main_async": "(argv)",
    "prefect.utilities.processutils.consume_process_output": "(process, stdout_sink, stderr_sink)",
}


def _parameters(function: Any) -> str:
    signature = inspect.signature(function)
    bare = [p.replace(default=p.empty, annotation=p.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=bare, return_annotation=signature.empty))


def unexpected_internals() -> list[str]:
    """Each entry of ``PREFECT_INTERNALS`` this Prefect lacks or has with another signature, described."""
    found = []
    for path, expected in PREFECT_INTERNALS.items():
        module, _, name = path.rpartition(".")
        try:
            function = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            found.append(f"{path} is missing")
            continue
        if not inspect.iscoroutinefunction(function) or _parameters(function) != expected:
            found.append(f"{path} is not `async def {name}{expected}`")
    return found


class WarmInterpreters:
    """At most one idle ``reelflow.orchestration.warm_engine`` process; ``take`` hands it a run and starts the
    next one."""

    def __init__(self) -> None:
        self.idle: anyio.abc.Process | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="reelflow-warm-")

    def _environment(self) -> dict[str, str]:
        settings = get_current_settings().to_environment_variables(exclude_unset=True)
        environment = processutils.sanitize_subprocess_env({**os.environ, **settings})
        return {k: v for k, v in environment.items() if v is not None}

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
        cold_run_process: Any = None

        async def setup(self) -> None:
            await super().setup()
            self.interpreters = WarmInterpreters()
            await self.interpreters.spawn()
            starter = importlib.import_module(STARTER_MODULE)
            self.cold_run_process = starter.run_process
            starter.run_process = self._run_process

        async def teardown(self, *exc_info: Any) -> None:
            if self.cold_run_process is not None:
                importlib.import_module(STARTER_MODULE).run_process = self.cold_run_process
            if self.interpreters is not None:
                await self.interpreters.close()
            await super().teardown(*exc_info)

        async def _run_process(self, command: list[str], *, stream_output: Any = False, task_status: Any = None,
                               task_status_handler: Any = None, **kwargs: Any) -> anyio.abc.Process:
            """``prefect.utilities.processutils.run_process``, with the process taken from the warm interpreters."""
            if self.interpreters is None or not self.interpreters.accepts(command, stream_output, kwargs):
                return await self.cold_run_process(command, stream_output=stream_output, task_status=task_status,
                                                   task_status_handler=task_status_handler, **kwargs)
            process = await self.interpreters.take(command, kwargs["env"], kwargs.get("cwd"))
            try:
                async with process:
                    if task_status is not None:
                        task_status.started(task_status_handler(process) if task_status_handler else process.pid)
                    await processutils.consume_process_output(process, stdout_sink=sys.stdout,
                                                              stderr_sink=sys.stderr)
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
    if unexpected := unexpected_internals():
        plain = stack.plain_worker_command(args.pool, args.name, limit=args.limit)
        print(f"reelflow.orchestration.warm_worker: WARNING: Prefect {prefect.__version__} does not have what the "
              f"warm worker patches ({'; '.join(unexpected)}); running Prefect's plain process worker instead: "
              f"{' '.join(plain)}", file=sys.stderr, flush=True)
        os.execvp(plain[0], plain)
    setup_signal_handlers_worker(os.getpid(), "the warm process worker", print)
    from reelflow.runs import reconcile

    reconcile.start_background()  # runs whose process died are started again through the deployment
    with contextlib.suppress(KeyboardInterrupt):  # how the signal handlers above stop the worker
        asyncio.run(serve(args.pool, args.name, args.limit))


if __name__ == "__main__":
    main()
