"""``reelflow models [add|remove]``: the catalog, and any fal endpoint registered as a model without code."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reelflow.cli.output import print_json
from reelflow.errors import ReelflowError, SpecError

app = typer.Typer(help="The model catalog; `models add` registers any fal endpoint as a model.",
                  invoke_without_command=True)
err = Console(stderr=True)
out = Console()
Field = Annotated[str | None, typer.Option(help="The endpoint's input field (from its API schema).")]


@app.callback()
def models(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False,
           kind: Annotated[str | None, typer.Option(help="Only this kind: i2v, t2v, t2i, i2i, llm, v2v or v2i "
                                                         "(the last two: ComfyUI workflows).")] = None,
           ) -> None:
    """List the model catalog and whether each model can run here."""
    if ctx.invoked_subcommand is not None:
        return
    from reelflow.core.availability import availability
    from reelflow.core.catalog import KINDS, load_catalog

    if kind is not None and kind not in KINDS:
        err.print(f"[red]error:[/] kind: '{escape(kind)}' is not a kind; choose one of: {', '.join(KINDS)}")
        raise typer.Exit(2)
    entries = []
    for entry in load_catalog().models:
        if kind is not None and entry.kind != kind:
            continue
        found = availability(entry)
        entries.append({**entry.model_dump(mode="json"), "price_text": entry.price.text(),
                        "available": found.available, "missing": found.missing, "unchecked": found.unchecked})
    if as_json:
        print_json(entries)
        return
    table = Table(title="models (prices in US dollars)", box=box.SIMPLE_HEAD)
    for column in ("id", "kind", "backend", "available", "price", "notes"):
        table.add_column(column, no_wrap=column in ("id", "kind"), overflow="fold")
    for e in entries:
        available = "no" if not e["available"] else "not checked" if e["unchecked"] else "yes"
        notes = "; ".join(e["missing"] or e["unchecked"]) or ("not AI: " if not e["ai"] else "") + e["speed_hint"]
        price = e["price_text"] + ("" if e["price"]["confirmed"] else " (unconfirmed)")
        table.add_row(e["id"], e["kind"], e["backend"], available, price, notes)
    out.print(table)


def _numbers(text: str | None, field: str) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SpecError(field, f"'{text}' must be numbers separated by commas, e.g. 5,10") from None
    if not values:
        raise SpecError(field, "give at least one value, e.g. 5,10")
    return values


def _price(kind: str, per_second: float | None, per_image: float | None, per_megapixel: float | None) -> Any:
    from reelflow.core.catalog import Price

    given = {name: value for name, value in (("price_per_second", per_second), ("price_per_image", per_image),
                                             ("price_per_megapixel", per_megapixel)) if value is not None}
    if len(given) > 1:
        raise SpecError(next(iter(given)), "give one of --price-per-second, --price-per-image, --price-per-megapixel")
    if any(value < 0 for value in given.values()):
        raise SpecError(next(iter(given)), "a price cannot be negative")
    source = "given with reelflow models add"
    if per_second is not None:
        return Price(unit="second", usd=per_second, source=source, confirmed=False)
    if per_image is not None:
        return Price(unit="image" if kind in ("t2i", "i2i") else "video", usd=per_image, source=source,
                     confirmed=False)
    if per_megapixel is not None:
        return Price(unit="megapixel", usd=per_megapixel, source=source, confirmed=False)
    return Price(unit="second" if kind in ("i2v", "t2v") else "image", usd=None, source="not given", confirmed=False)


@app.command("add")
def add(
    model_id: Annotated[str, typer.Argument(metavar="ID", help="The new model's id.")],
    fal_endpoint: Annotated[str, typer.Option(help="The fal endpoint id, OWNER/APP[/PATH].")],
    kind: Annotated[str, typer.Option(help="i2v, t2v, t2i or i2i.")],
    from_openapi: Annotated[str | None, typer.Option(help="fal's OpenAPI schema of the endpoint (a file or URL): "
                                                          "fills field names and choices not given.")] = None,
    image_field: Field = None,
    end_image_field: Field = None,
    duration_field: Field = None,
    durations: Annotated[str | None, typer.Option(help="Offered durations in seconds, e.g. 5,10.")] = None,
    duration_format: Annotated[str | None, typer.Option(help="How a duration is sent: '{}' -> \"5\", '{}s' -> "
                                                             "\"5s\".")] = None,
    resolution_field: Field = None,
    resolutions: Annotated[str | None, typer.Option(help="Offered resolutions, e.g. 480p,720p.")] = None,
    seed_field: Field = None,
    negative_prompt_field: Field = None,
    audio_field: Field = None,
    image_size_field: Field = None,
    output_field: Annotated[str | None, typer.Option(help="Where the result's URL is: video.url (video) or "
                                                          "images.url (images).")] = None,
    price_per_second: Annotated[float | None, typer.Option(help="USD per second of video.")] = None,
    price_per_image: Annotated[float | None, typer.Option(help="USD per image (or per video).")] = None,
    price_per_megapixel: Annotated[float | None, typer.Option(help="USD per megapixel, rounded up.")] = None,
    name: Annotated[str | None, typer.Option(help="Shown by `reelflow models`.")] = None,
    description: Annotated[str, typer.Option(help="Shown by `reelflow models`.")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite a model of the same id.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register a fal endpoint as model ID (stored under $REELFLOW_HOME/models/); no code needed."""
    try:
        entry = _build(model_id, fal_endpoint, kind, from_openapi, locals())
        from reelflow.core.catalog.registered import register

        register(entry, replace=replace)
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print_json(entry.model_dump(mode="json"))
        return
    out.print(f"registered model [bold]{entry.id}[/] on fal endpoint {entry.endpoint} ({entry.kind}; "
              f"{entry.price.text()})")


def _build(model_id: str, endpoint: str, kind: str, from_openapi: str | None, given: dict[str, Any]) -> Any:
    from reelflow.core.catalog import ModelInputs
    from reelflow.core.catalog.models import FalFields
    from reelflow.core.catalog.registered import fal_entry

    read: dict[str, Any] = {}
    doc = None
    if from_openapi is not None:
        from reelflow.providers.fal.openapi import load_openapi, suggested

        doc = load_openapi(from_openapi)
        read = suggested(doc, endpoint, kind)
    video, image = kind in ("i2v", "t2v"), kind in ("t2i", "i2i")
    image_default = None if kind in ("t2v", "t2i") else "image_url"

    def pick(option: str, default: Any = None) -> Any:
        return given[option] if given.get(option) is not None else read.get(option, default)

    durations = _numbers(given["durations"], "durations") or read.get("durations")
    resolutions = [r.strip() for r in given["resolutions"].split(",")] if given["resolutions"] else (
        read.get("resolutions"))
    fields = FalFields(
        image_field=pick("image_field", image_default) if kind in ("i2v", "i2i") else None,
        end_image_field=pick("end_image_field") if video else None,
        duration_field=pick("duration_field", "duration" if durations else None) if video else None,
        duration_format=pick("duration_format", "{}"),
        resolution_field=pick("resolution_field", "resolution" if resolutions else None) if video else None,
        negative_prompt_field=pick("negative_prompt_field", "negative_prompt" if read.get("negative_prompt")
                                   else None),
        seed_field=pick("seed_field", "seed" if read.get("seed") else None),
        audio_field=pick("audio_field") if video else None,
        image_size_field=pick("image_size_field") if image else None,
        output_field=given["output_field"] or ("images.url" if image else "video.url"))
    sized = fields.image_size_field is not None
    inputs = ModelInputs(
        prompt="required", negative_prompt=fields.negative_prompt_field is not None,
        durations=durations if video else None, default_duration=durations[0] if video and durations else None,
        resolutions=resolutions if video else None,
        default_resolution=(resolutions[0] if video and resolutions else "1024x768" if sized else None),
        width_range=(256, 2048) if sized else None, height_range=(256, 2048) if sized else None,
        size_multiple=8 if sized else 1, seed=fields.seed_field is not None,
        end_image="optional" if fields.end_image_field else "unused", audio=fields.audio_field is not None)
    price = _price(kind, given["price_per_second"], given["price_per_image"], given["price_per_megapixel"])
    entry = fal_entry(model_id, endpoint=endpoint, kind=kind, fields=fields, inputs=inputs, price=price,
                      name=given["name"], description=given["description"],
                      source=f"reelflow models add{f' --from-openapi {from_openapi}' if from_openapi else ''}")
    if doc is not None:
        from reelflow.providers.fal.openapi import drift

        problems = drift(entry, doc)
        if problems:
            raise SpecError("from_openapi", "the endpoint's schema does not take what this model would send: "
                            + "; ".join(problems))
    return entry


@app.command("remove")
def remove(model_id: Annotated[str, typer.Argument(metavar="ID", help="A model registered with `models add`.")],
           ) -> None:
    """Remove a fal model registered with `reelflow models add`."""
    from reelflow.core.catalog.registered import remove as remove_model

    try:
        removed = remove_model(model_id)
    except ReelflowError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if not removed:
        err.print(f"[red]error:[/] id: no model '{escape(model_id)}' is registered (see `reelflow models`)")
        raise typer.Exit(2)
    out.print(f"removed model {model_id}")
