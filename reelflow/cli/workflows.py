"""``reelflow workflows add|list|show|remove``: your own ComfyUI workflows as models (``comfyui:<name>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from reelflow.cli.output import print_json
from reelflow.errors import ReelflowError

workflows_app = typer.Typer(help="Custom ComfyUI workflows (API-format JSON) registered as models: image or video "
                            "in, image or video out.",
                            no_args_is_help=True)
err = Console(stderr=True)
out = Console()
Point = Annotated[str | None, typer.Option(help="'<node id>.<input name>'.")]


@workflows_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The model becomes 'comfyui:NAME'.")],
    file: Annotated[Path, typer.Option(help="API-format workflow JSON (ComfyUI: Workflow > Export (API)).")],
    output: Annotated[str, typer.Option(help="Id of the node that saves the result, e.g. 108.")],
    image: Annotated[str | None, typer.Option(help="Where the uploaded image goes, e.g. 97.image (a workflow "
                                                   "that takes an image; or give --video).")] = None,
    video: Annotated[str | None, typer.Option(help="Where the uploaded video goes, e.g. 1.file (a workflow that "
                                                   "takes a video; or give --image).")] = None,
    output_kind: Annotated[str | None, typer.Option(help="'image' or 'video': what the output node saves. "
                                                         "Default: known from its class (SaveImage: image; "
                                                         "SaveVideo, VHS_VideoCombine: video).")] = None,
    prompt: Annotated[str | None, typer.Option(help="Where the prompt goes, e.g. 93.text.")] = None,
    seed: Annotated[str | None, typer.Option(help="Where the seed goes, e.g. 86.noise_seed.")] = None,
    negative_prompt: Point = None,
    width: Point = None,
    height: Point = None,
    length: Annotated[str | None, typer.Option(help="Frame count input, e.g. 98.length.")] = None,
    fps: Point = None,
    filename_prefix: Annotated[str | None, typer.Option(help="Default: the output node's filename_prefix.")] = None,
    size_multiple: Annotated[int, typer.Option(help="Width and height must be multiples of this.")] = 16,
    frames_rule: Annotated[str, typer.Option(help="'4n+1' (Wan) or 'any'.")] = "any",
    description: Annotated[str, typer.Option(help="Shown by `reelflow models`.")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a workflow of the same name.")] = False,
) -> None:
    """Check a workflow (every named node and input must exist) and register it as model comfyui:NAME."""
    from reelflow.core.catalog.workflows import model_entry, register

    try:
        entry = register(name, file, image=image, video=video, output_kind=output_kind, prompt=prompt, seed=seed,
                         output=output,
                         negative_prompt=negative_prompt, width=width, height=height, length=length, fps=fps,
                         filename_prefix=filename_prefix, size_multiple=size_multiple, frames_rule=frames_rule,
                         description=description, replace=replace)
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    models = ", ".join(f"{ref.folder}/{ref.filename}" for ref in entry.template.required_models()) or "none"
    made = model_entry(entry)
    out.print(f"registered model [bold]{entry.model_id}[/] ({made.input_kind} in, {made.output_kind} out; "
              f"{len(entry.template.graph)} nodes; model files: {models})")


@workflows_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered workflows."""
    from reelflow.core.catalog.workflows import registered

    found = registered()
    if as_json:
        print_json([{"model": w.model_id, "name": w.name, "source": w.source, "output_node": w.template.output_node,
                     "input_kind": w.template.input_kind, "output_kind": w.template.output_kind,
                     "inject": {k: ".".join(v) for k, v in w.template.inject.points().items()},
                     "registered_at": w.registered_at} for w in found])
        return
    table = Table(title="ComfyUI workflows")
    for column in ("model", "takes", "makes", "nodes", "inputs", "output", "source"):
        table.add_column(column)
    for w in found:
        points = ", ".join(f"{k}={'.'.join(v)}" for k, v in w.template.inject.points().items())
        table.add_row(w.model_id, w.template.input_kind, w.template.output_kind, str(len(w.template.graph)), points,
                      w.template.output_node, w.source or "-")
    out.print(table)


@workflows_app.command("remove")
def remove(name: str) -> None:
    """Forget a registered workflow (runs already made keep their videos)."""
    from reelflow.core.catalog.workflows import remove as remove_workflow

    try:
        removed = remove_workflow(name)
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not removed:
        err.print(f"[red]error:[/] no workflow named '{name}'")
        raise typer.Exit(1)
    out.print(f"removed comfyui:{name}")
