"""Preparing a run: validate everything, reuse a finished identical run, else record a new one.

Everything that can be wrong with the input is found here, before a row is written, a file stored,
a slot taken or a provider paid.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelflow.core.availability import require_runnable
from reelflow.core.domain import MediaRef, ProviderOutput
from reelflow.core.inputs import InputImage, load_image
from reelflow.core.spec import PipelineSpec, parse_spec
from reelflow.errors import SpecError
from reelflow.storage import get_storage
from reelflow.store import repo
from reelflow.store.views import RunView


@dataclass(frozen=True)
class Prepared:
    run: RunView
    cached: bool


def outputs_present(run: RunView) -> bool:
    """A cached run is only reused while its stored files are still there."""
    return bool(run.outputs) and all(o.path is None or Path(o.path).is_file() for o in run.outputs)


def load_end_image(source: str) -> InputImage:
    """The spec's last frame, read and checked like the start image; its errors name ``end_image``."""
    try:
        return load_image(source)
    except SpecError as exc:
        raise SpecError("end_image", exc.message) from None


def prepare_run(spec_data: dict[str, Any] | PipelineSpec, *, force: bool = False, run_id: str | None = None,
                batch_id: str | None = None, pipeline_id: str | None = None) -> Prepared:
    spec = parse_spec(spec_data)
    model = require_runnable(spec)
    image = load_image(spec.image) if spec.image else None
    end_image = load_end_image(spec.end_image) if spec.end_image else None
    storage = get_storage(spec.storage)
    key = spec.idempotency_key(image.sha256 if image else None, end_image.sha256 if end_image else None)
    if not force:
        done = repo.find_completed_run(key)
        if done is not None and outputs_present(done):
            return Prepared(run=done.model_copy(update={"cached": True}), cached=True)
    run_id = run_id or uuid.uuid4().hex
    input_files = []
    for role, found in (("input", image), ("end_image", end_image)):
        if found is not None:
            stored = storage.put_bytes(found.data, found.content_type, f"{role}{found.extension}")
            media = MediaRef(path=stored.path, url=stored.url, content_type=found.content_type)
            input_files.append((stored, ProviderOutput(media=media, role=role, width=found.width,
                                                       height=found.height)))
    run = repo.create_run(run_id=run_id, idempotency_key=key, spec=spec.model_dump(mode="json"), model_id=model.id,
                          backend=model.backend, forced=force, pipeline_id=pipeline_id, batch_id=batch_id,
                          input_files=input_files)
    return Prepared(run=run, cached=False)
