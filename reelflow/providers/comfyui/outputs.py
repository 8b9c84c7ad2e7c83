"""Finding the video or image file(s) a finished prompt wrote, whatever node wrote them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from reelflow.errors import ComfyNoVideoOutputError

VIDEO_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".webp": "image/webp",
               ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
               ".bmp": "image/bmp"}
OUTPUT_KEYS = ("videos", "gifs", "images")
EXTENSIONS = {"video": ".mp4", "image": ".png"}
"""The extension a save node of each kind writes when nothing else says (SaveVideo's auto format, SaveImage)."""


class OutputFile(BaseModel):
    """One file a prompt produced, addressed the way ``/view`` wants it."""

    model_config = ConfigDict(frozen=True)

    filename: str
    subfolder: str = ""
    type: str = "output"
    node_id: str | None = None

    @property
    def extension(self) -> str:
        return posixpath.splitext(self.filename)[1].lower()

    @property
    def content_type(self) -> str:
        return VIDEO_TYPES.get(self.extension) or IMAGE_TYPES.get(self.extension, "application/octet-stream")


def output_prefix(prompt_id: str) -> str:
    """The ``filename_prefix`` of an attempt: unique, so its first file is ``<prompt_id>_00001_.mp4``."""
    return f"reelflow/{prompt_id}"


def expected_output(filename_prefix: str, extension: str = ".mp4") -> OutputFile:
    """The first file a save node writes for a never-used prefix: ``<dir>/<base>_00001_.<ext>``."""
    subfolder, base = posixpath.split(filename_prefix)
    return OutputFile(filename=f"{base}_00001_{extension}", subfolder=subfolder)


def _is_video(item: dict[str, Any], animated: bool) -> bool:
    extension = posixpath.splitext(str(item.get("filename", "")))[1].lower()
    return extension in VIDEO_TYPES or animated or str(item.get("format", "")).startswith("video/")


def _node_videos(node_id: str, node_output: dict[str, Any]) -> list[OutputFile]:
    animated = any(bool(flag) for flag in node_output.get("animated") or [])
    found = []
    for key in OUTPUT_KEYS:
        for item in node_output.get(key) or []:
            if isinstance(item, dict) and item.get("filename") and _is_video(item, animated):
                found.append(OutputFile(filename=item["filename"], subfolder=item.get("subfolder") or "",
                                        type=item.get("type") or "output", node_id=node_id))
    return found


def _collect(history_entry: dict[str, Any], output_node: str | None,
             of_node: Callable[[str, dict[str, Any]], list[OutputFile]], what: str) -> list[OutputFile]:
    """The files ``of_node`` finds in every output node, ``output_node``'s first; none raises
    ``ComfyNoVideoOutputError`` naming what each node did output."""
    outputs: dict[str, Any] = history_entry.get("outputs") or {}
    order = sorted(outputs, key=lambda node_id: node_id != output_node)
    found = [item for node_id in order for item in of_node(str(node_id), outputs[node_id] or {})]
    if not found:
        summary = {node_id: sorted((value or {}).keys()) for node_id, value in outputs.items()}
        raise ComfyNoVideoOutputError(f"the prompt finished without {what} output (outputs: {summary or 'none'})")
    return found


def find_outputs(history_entry: dict[str, Any], output_node: str | None = None) -> list[OutputFile]:
    """Every video in ``images``/``gifs``/``videos`` of every output node, ``output_node``'s first.

    Raises ``ComfyNoVideoOutputError`` when there is none.
    """
    return _collect(history_entry, output_node, _node_videos, "a video")


def find_video(history_entry: dict[str, Any], output_node: str | None = None) -> OutputFile:
    """The one video to keep: from ``output_node`` when it has one, otherwise the first found."""
    return find_outputs(history_entry, output_node)[0]


def _node_images(node_id: str, node_output: dict[str, Any]) -> list[OutputFile]:
    """Still images (``images`` entries of SaveImage/PreviewImage); an ``animated`` node's are videos."""
    if any(bool(flag) for flag in node_output.get("animated") or []):
        return []
    return [OutputFile(filename=item["filename"], subfolder=item.get("subfolder") or "",
                       type=item.get("type") or "output", node_id=node_id)
            for item in node_output.get("images") or []
            if isinstance(item, dict) and item.get("filename")
            and posixpath.splitext(str(item["filename"]))[1].lower() in IMAGE_TYPES]


def find_image(history_entry: dict[str, Any], output_node: str | None = None) -> OutputFile:
    """The one image to keep: ``output_node``'s first when it has one, otherwise the first found.

    Raises ``ComfyNoVideoOutputError`` (no output of the wanted kind) when there is none."""
    return _collect(history_entry, output_node, _node_images, "an image")[0]


def find_output(history_entry: dict[str, Any], output_node: str | None,
                kind: Literal["image", "video"]) -> OutputFile:
    """The one file of ``kind`` to keep (see ``find_image`` and ``find_video``)."""
    return find_image(history_entry, output_node) if kind == "image" else find_video(history_entry, output_node)
