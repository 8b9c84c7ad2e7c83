"""A secret-free local note of what the GpuEndpoint block configures, so availability checks need no network.

Written whenever reelflow saves or loads the block (``reelflow gpu set``, ``gpu show``, the panel, every GPU
job); a block edited in the Prefect UI is noted again on its next load.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelflow.settings import get_settings

if TYPE_CHECKING:
    from blocks.gpu_endpoint import GpuEndpoint

URL_FIELD = {"comfyui": "comfyui_url", "swarmui": "swarmui_url"}


def mirror_path(name: str) -> Path:
    return get_settings().home / "gpu" / f"{name}.json"


def write_mirror(name: str, gpu: GpuEndpoint) -> None:
    note: dict[str, Any] = {
        "block": name, "provider": gpu.provider, "comfyui_url": gpu.comfyui_url, "swarmui_url": gpu.swarmui_url,
        "vastai_instance_id": gpu.vastai_instance_id, "has_vastai_api_key": gpu.vastai_api_key is not None,
        "has_portal_token": gpu.portal_token is not None, "fallback_model": gpu.fallback_model,
        "noted_at": datetime.now(UTC).isoformat(),
    }
    path = mirror_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".note-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(note, fh, indent=1)
    os.replace(tmp, path)


def read_mirror(name: str | None = None) -> dict[str, Any] | None:
    try:
        return json.loads(mirror_path(name or get_settings().gpu_block).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def missing_for(backend: str) -> list[str]:
    """What stops ``backend`` (comfyui/swarmui) from running here; empty when a URL is configured or discoverable."""
    name = get_settings().gpu_block
    note = read_mirror(name)
    flag = f"--{URL_FIELD[backend].replace('_', '-')}"
    if note is None:
        return [f"no GPU endpoint is configured (block '{name}'): run `reelflow gpu set {flag} URL`, "
                "or `reelflow gpu set --provider vastai ...` then `reelflow gpu discover`"]
    discoverable = note.get("provider") == "vastai" and note.get("vastai_instance_id") and note.get(
        "has_vastai_api_key")
    if not note.get(URL_FIELD[backend]) and not discoverable:
        return [f"the GPU endpoint '{name}' has no {backend} URL: run `reelflow gpu set {flag} URL` "
                "(or `reelflow gpu discover` for a vast.ai instance)"]
    return []
