"""Runs several pipeline specs concurrently in one process and prints ``RESULT {json}``.

``python -m tests.support.fal_runs '[{"model": ...}, ...]'`` with the environment from ``prepare_fal_env``
(fal-client reads its hosts at import, so flows that talk to the emulator run in their own process).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from reelflow.api import arun
from reelflow.cli.output import run_json


async def main(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runs = await asyncio.gather(*(arun(spec, force=True) for spec in specs))
    return [run_json(run) for run in runs]


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(main(json.loads(sys.argv[1]))), default=str), flush=True)
