"""Which storage ``auto`` means: the R2 block chosen with ``reelflow storage r2``, else the local folder.

The choice is a small file in REELFLOW_HOME (``storage.json``), so the offline path never has to ask
Prefect whether a block exists; ``REELFLOW_STORAGE_BLOCK`` overrides it.
"""

from __future__ import annotations

import json
from pathlib import Path

from reelflow.settings import get_settings


def _marker() -> Path:
    return get_settings().home / "storage.json"


def r2_block_name() -> str | None:
    settings = get_settings()
    if settings.storage_block:
        return settings.storage_block
    try:
        return json.loads(_marker().read_text()).get("r2_block")
    except (OSError, ValueError):
        return None


def choose_r2(block_name: str | None) -> None:
    """Make ``auto`` storage use this R2 block (None: back to the local folder)."""
    marker = _marker()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"r2_block": block_name}))
