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
