"""The detached child that renders a script's run (started by ``reelflow.runs.detached.start``): it takes the
run from the submitting process in the store, executes it and exits when it has ended."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from reelflow.errors import ReelflowError
from reelflow.runs.launcher import execute_here
from reelflow.runs.resume import aresume
from reelflow.store import owners, repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reelflow.runs.render_child")
    parser.add_argument("run_id")
    parser.add_argument("owner", help="the submitting process's owner id: the run is taken only from it")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--resume", action="store_true", help="continue the run (its completed steps reused)")
    args = parser.parse_args(argv)
    if not owners.claim(args.run_id, args.owner):
        print(f"run {args.run_id} is no longer {args.owner}'s to render; nothing to do", flush=True)
        return 0
    with contextlib.suppress(ReelflowError, asyncio.CancelledError):  # recorded in the store by execute_here
        if args.resume:
            asyncio.run(aresume(args.run_id))
        else:
            asyncio.run(execute_here(args.run_id, repo.get_run(args.run_id).spec, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
