"""``reelflow resume RUN_ID``: continue a run whose process died, without paying for its jobs again."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from reelflow.cli.output import print_json, print_run, run_json
from reelflow.errors import ModelUnavailableError, RunBusyError, RunNotFoundError, SpecError

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


def resume(run_id: Annotated[str, typer.Argument(help="The run to continue.")],
           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Continue a queued, running or failed run whose process died (crash, kill, reboot).

    Provider jobs whose ids were stored are polled again, never submitted twice.
    """
    from reelflow.errors import RunNotResumableError
    from reelflow.runs.resume import aresume

    try:
        found = asyncio.run(aresume(run_id))
    except (RunNotFoundError, RunBusyError, RunNotResumableError, ModelUnavailableError, SpecError) as exc:
        if as_json:
            print_json({"run_id": run_id, "status": "rejected", "error": str(exc)})
        else:
            Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        print_json(run_json(found))
    else:
        print_run(Console(), found)
    raise typer.Exit(0 if found.status == "completed" else EXIT_FAILED)
