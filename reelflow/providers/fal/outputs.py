"""fal results turned into ProviderOutput; a result without a media URL is an error, never a success."""

from __future__ import annotations

import mimetypes
from typing import Any

from reelflow.core.domain import MediaRef, ProviderOutput
from reelflow.errors import FalRequestError


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def _file(result: Any, key: str, plural: str) -> dict[str, Any] | None:
    if not isinstance(result, dict):
        return None
    item = result.get(key)
    if item is None and isinstance(result.get(plural), list) and result[plural]:
        item = result[plural][0]
    return item if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"] else None


def _missing(what: str, result: Any, request_id: str | None) -> FalRequestError:
    keys = sorted(result) if isinstance(result, dict) else type(result).__name__
    return FalRequestError(f"fal result has no {what} URL (result keys: {keys})", request_id=request_id)


def _media(file: dict[str, Any], default_type: str) -> MediaRef:
    url, name = file["url"], file.get("file_name")
    guessed = mimetypes.guess_type(name or url.split("?")[0])[0]
    content_type = file.get("content_type") or guessed or default_type
    return MediaRef(url=url, content_type=content_type, filename=name)


def _parse(result: Any, role: str, plural: str, default_type: str, request_id: str | None,
           **facts: tuple[str, type[int] | type[float]]) -> ProviderOutput:
    """The ``role`` file (or the first of ``plural``) with the facts the endpoint reports: name -> (key, type)."""
    file = _file(result, role, plural)
    if file is None:
        raise _missing(role, result, request_id)
    values = {name: _number(file.get(key), kind) for name, (key, kind) in facts.items()}
    return ProviderOutput(media=_media(file, default_type), role=role, provider_job_id=request_id, **values)


def parse_video_output(result: dict[str, Any], *, request_id: str | None = None) -> ProviderOutput:
    """``video.url`` plus width, height, fps, duration and num_frames when the endpoint reports them."""
    return _parse(result, "video", "videos", "video/mp4", request_id, width=("width", int),
                  height=("height", int), fps=("fps", float), frames=("num_frames", int),
                  duration_s=("duration", float))


def parse_image_output(result: dict[str, Any], *, request_id: str | None = None) -> ProviderOutput:
    """``images[0].url`` (FLUX) with its width and height."""
    return _parse(result, "image", "images", "image/jpeg", request_id, width=("width", int), height=("height", int))


def parse_output(result: dict[str, Any], output_field: str, *, request_id: str | None = None) -> ProviderOutput:
    """The file at ``output_field`` (``video.url``, ``images.url``: a list's first item), a video or an image."""
    path = output_field.removesuffix(".url").replace("[]", "").replace("[0]", "").split(".")
    container: Any = result
    for key in path[:-1]:
        container = container.get(key) if isinstance(container, dict) else None
        container = container[0] if isinstance(container, list) and container else container
    last = path[-1]
    image = last.startswith("image")
    role = "image" if image else "video"
    holder = {role: container.get(last)} if isinstance(container, dict) else {}
    if isinstance(holder.get(role), list):
        holder = {role: holder[role][0] if holder[role] else None}
    if holder.get(role) is None:
        raise _missing(output_field, result, request_id)
    parse = parse_image_output if image else parse_video_output
    return parse(holder, request_id=request_id)
