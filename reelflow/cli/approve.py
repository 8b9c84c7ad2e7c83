"""``reelflow approve RUN_ID STEP [--reject | --redo [--prompt TEXT] [--seed N]]``: answer a waiting approval step
from any process, through the same Prefect resume-with-input the Prefect UI's form sends."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from reelflow.cli.output import print_json
from reelflow.errors import AmbiguousRunIdError, RunNotFoundError, SpecError
from reelflow.store import repo

EXIT_NOT_WAITING, EXIT_BAD_INPUT = 1, 2
err = Console(stderr=True)


def _fail(message: str, code: int, as_json: bool, **extra: object) -> None:
    if as_json:
        print_json({"status": "refused", "error": message, **extra})
    else:
        err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def approve(run_id: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it (6+ characters).")],
            step: Annotated[str, typer.Argument(help="The approval step's id, e.g. 'look'.")],
            reject: Annotated[bool, typer.Option("--reject", help="Reject: the run ends cancelled.")] = False,
            redo: Annotated[bool, typer.Option("--redo", help="Render the judged step again, then ask again.")] = False,
            prompt: Annotated[str | None, typer.Option(help="With --redo: the edited prompt to render with.")] = None,
            seed: Annotated[int | None, typer.Option(help="With --redo: the seed to render with.")] = None,
            note: Annotated[str | None, typer.Option(help="Why, kept in the run's history.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Approve (the default), reject or redo a run's waiting approval step.

    Exits 0 once the answer is sent; 2 for a bad run id, step or option; 1 if the step is not waiting for an answer
    (not reached yet, answered already, or the run has ended).
    """
    if reject and redo:
        _fail("--reject and --redo: give one of them (neither approves)", EXIT_BAD_INPUT, as_json, field="decision")
    decision = "reject" if reject else "redo" if redo else "approve"
    from reelflow.runs.approvals import NotWaitingError, StepNotFoundError, answer_approval  # loads Prefect

    try:
        full_id = repo.resolve_run_id(run_id)
        answer_approval(full_id, step, decision, prompt=prompt, seed=seed, note=note, via="cli")
    except (RunNotFoundError, AmbiguousRunIdError, StepNotFoundError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT, as_json)
    except SpecError as exc:
        _fail(f"--{exc.field}: {exc.message}" if exc.field in ("prompt", "seed", "note") else str(exc),
              EXIT_BAD_INPUT, as_json, field=exc.field)
    except NotWaitingError as exc:
        _fail(str(exc), EXIT_NOT_WAITING, as_json)
    if as_json:
        print_json({"run_id": full_id, "step": step, "decision": decision, "status": "sent", "prompt": prompt,
                    "seed": seed, "note": note})
    else:
        then = {"approve": "it continues", "reject": "it ends cancelled", "redo": "the step renders again"}[decision]
        err.print(f"{decision} sent to step '{escape(step)}' of run {full_id}: {then}", soft_wrap=True)
