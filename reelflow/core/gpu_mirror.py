"""A secret-free local note of what the GpuEndpoint block configures, so availability checks need no network.

Its one writer is ``reelflow.gpu.endpoint``, on every save and load of the block (``reelflow gpu set``,
``gpu show``, the panel, every GPU job); a block edited in the Prefect UI is noted again on its next load.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reelflow.core.domain import GPU_URL_FIELD
from reelflow.core.files import read_json, write_json_atomic
from reelflow.settings import get_settings


def mirror_path(name: str) -> Path:
    return get_settings().home / "gpu" / f"{name}.json"


def write_mirror(name: str, fields: dict[str, Any]) -> None:
    """Note the block's non-secret ``fields`` (``GpuEndpoint.mirror_fields()``)."""
    write_json_atomic(mirror_path(name), {"block": name, **fields, "noted_at": datetime.now(UTC).isoformat()})


def read_mirror(name: str | None = None) -> dict[str, Any] | None:
    return read_json(mirror_path(name or get_settings().gpu_block))


def missing_for(backend: str) -> list[str]:
    """What stops ``backend`` (comfyui/swarmui) from running here; empty when a URL is configured or discoverable."""
    name = get_settings().gpu_block
    note = read_mirror(name)
    flag = f"--{GPU_URL_FIELD[backend].replace('_', '-')}"
    if note is None:
        return [f"no GPU endpoint is configured (block '{name}'): run `reelflow gpu set {flag} URL`, "
                "or `reelflow gpu set --provider vastai ...` then `reelflow gpu discover`"]
    discoverable = note.get("provider") == "vastai" and note.get("vastai_instance_id") and note.get(
        "has_vastai_api_key")
    if not note.get(GPU_URL_FIELD[backend]) and not discoverable:
        return [f"the GPU endpoint '{name}' has no {backend} URL: run `reelflow gpu set {flag} URL` "
                "(or `reelflow gpu discover` for a vast.ai instance)"]
    return []
