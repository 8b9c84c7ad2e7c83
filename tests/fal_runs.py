"""Runs several pipeline specs concurrently in one process and prints ``RESULT {json}``.

``python -m tests.fal_runs '[{"model": ...}, ...]'`` with the environment from ``prepare_fal_env``
(fal-client reads its hosts at import, so flows that talk to the emulator run in their own process).
Flow runs are started one after another (each once the previous one runs its first task): a SQLite
Prefect server answers concurrent flow-run creations with 503, and Prefect's client then waits 2 s
or more; the runs themselves then proceed concurrently.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from reelflow import events
from reelflow.api import arun
from reelflow.cli.output import run_json


async def main(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    started = asyncio.Event()

    def on_event(run_id: str, kind: str, message: str, progress: float | None) -> None:
        if kind == "step" and message.endswith(" started"):
            started.set()

    events.subscribe(on_event)
    runs = []
    for spec in specs:
        started.clear()
        runs.append(asyncio.create_task(arun(spec, force=True)))
        await asyncio.wait([runs[-1], asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    done = await asyncio.gather(*runs, return_exceptions=True)
    return [{"status": "error", "error": repr(run)} if isinstance(run, BaseException) else run_json(run)
            for run in done]


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(json.loads(sys.argv[1]))), default=str), flush=True)
