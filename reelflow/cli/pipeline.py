"""Stand-in for C1a's ``reelflow pipeline`` group (s20-pdef) until it lands."""

from __future__ import annotations

import typer

pipeline_app = typer.Typer(name="pipeline", help="Pipelines as graphs of steps: validate, price, run, list.",
                           no_args_is_help=True)
