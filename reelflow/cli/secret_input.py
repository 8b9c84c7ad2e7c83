"""Secrets on the command line without leaving them in ``ps`` or the shell history: an environment variable, or
``-`` for a hidden prompt."""

from __future__ import annotations

import typer

PROMPT = "-"


def prompt_if_dash(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """``--portal-token -`` asks for the value without echoing it."""
    if value != PROMPT:
        return value
    label = (param.name or "secret").replace("_", " ")
    return str(typer.prompt(label, hide_input=True))
