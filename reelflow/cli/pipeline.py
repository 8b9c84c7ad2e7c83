"""``reelflow pipeline``: check a definition (``validate``), print its JSON Schema (``schema``), price it before
paying (``estimate``) and list the stored ones (``list``). ``run``, ``resume`` and ``show`` register here too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from reelflow.errors import PipelineDefinitionError, SpecError

pipeline_app = typer.Typer(name="pipeline", help="Pipelines as graphs of steps: validate, price, run, list.",
                           no_args_is_help=True)
err = Console(stderr=True)
out = Console()
EXIT_BAD_INPUT = 2

DefinitionFile = Annotated[Path, typer.Argument(help="A pipeline definition: a .yaml, .yml or .json file.")]
InputOption = Annotated[list[str] | None, typer.Option(
    "--input", "-i", help="KEY=VALUE for one pipeline input; repeat for more. texts: a JSON list or a|b|c.")]


def fail(exc: SpecError) -> typer.Exit:
    """Print a definition or input error the way every pipeline command does, and the exit to raise."""
    err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def parse_inputs(pairs: list[str] | None) -> dict[str, str]:
    """``--input KEY=VALUE`` pairs as a mapping (values stay text; ``resolve_inputs`` converts them)."""
    given: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PipelineDefinitionError(None, "--input", f"'{pair}' is not KEY=VALUE")
        given[key.strip()] = value
    return given


def checked(file: Path) -> Any:
    """The loaded and checked definition in ``file``."""
    from reelflow.core.pipeline.check import check_definition
    from reelflow.core.pipeline.load import load_definition

    definition = load_definition(file)
    check_definition(definition)
    return definition


@pipeline_app.command()
def validate(file: DefinitionFile) -> None:
    """Check a definition without running anything: exit 0 with a summary, or exit 2 naming the step and field."""
    from reelflow.core.pipeline.summary import summary

    try:
        definition = checked(file)
    except SpecError as exc:
        raise fail(exc) from None
    out.print(escape(summary(definition)), soft_wrap=True, highlight=False)


@pipeline_app.command()
def schema() -> None:
    """Print the JSON Schema of a pipeline definition (for editors and other tools)."""
    from reelflow.core.pipeline.definition import PipelineDefinition

    typer.echo(json.dumps(PipelineDefinition.model_json_schema(), indent=2, sort_keys=True))


@pipeline_app.command()
def estimate(
    file: DefinitionFile,
    inputs: InputOption = None,
    gpu_usd_per_hour: Annotated[float | None, typer.Option(min=0, help="Your GPU's $/hour (GPU steps).")] = None,
    gpu_seconds: Annotated[float | None, typer.Option(min=0, help="GPU seconds one GPU job takes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the estimate as JSON (money as exact text).")] = False,
) -> None:
    """Price each step and the total before anything runs (fan-out and variants counted; unknown is unknown)."""
    from reelflow.core.pipeline.estimate import estimate as price

    try:
        definition = checked(file)
        found = price(definition, parse_inputs(inputs), gpu_usd_per_hour=gpu_usd_per_hour, gpu_seconds=gpu_seconds)
    except SpecError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"pipeline": definition.name, **found.as_json()}))
        return
    print_estimate(definition.name, found)


def print_estimate(name: str, found: Any) -> None:
    """The estimate as a table with its total (``reelflow pipeline run`` prints it before running too)."""
    from rich.table import Table

    table = Table(title=f"{name}: estimated cost", title_justify="left")
    for column in ("step", "kind", "model", "jobs", "price", "note"):
        table.add_column(column, justify="right" if column in ("jobs", "price") else "left")
    for step in found.steps:
        table.add_row(step.step, step.kind, step.model or "-", str(step.count), money(step.usd), step.note)
    out.print(table)
    total = found.total_usd
    tail = "" if total is not None else " (no known price: " + ", ".join(found.unknown) + ")"
    out.print(f"total: {money(total)}{tail}", highlight=False)


def money(usd: Any) -> str:
    """Exact dollars (at least two decimals, every digit the price has), or ``unknown``."""
    if usd is None:
        return "unknown"
    text = format(usd.normalize(), "f")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


@pipeline_app.command("list")
def list_pipelines(
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many to show.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False,
) -> None:
    """The stored pipelines (saved with the REST API or the panel): name, id, version and steps."""
    from rich.table import Table

    from reelflow.store import pipelines

    found, total = pipelines.list_pipelines(limit=limit)
    if as_json:
        typer.echo(json.dumps({"total": total, "pipelines": [p.model_dump(mode="json") for p in found]}))
        return
    if not found:
        out.print("no stored pipelines (save one with POST /api/pipelines)")
        return
    table = Table(title=f"{total} stored pipeline{'s' if total != 1 else ''}", title_justify="left")
    for column in ("name", "id", "version", "steps", "saved as"):
        table.add_column(column)
    for view in found:
        steps = view.definition.get("steps") or []
        table.add_row(escape(view.name), view.pipeline_id[:12], str(view.version),
                      escape(" -> ".join(f"{s.get('id')} ({s.get('kind')})" for s in steps)), view.saved_as)
    out.print(table)
