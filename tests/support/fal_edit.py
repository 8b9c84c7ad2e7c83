"""Edits an image with ``reelflow.jobs.fal.run_edit_image`` inside a Prefect flow, as the pipeline engine's
``edit_image`` step does, and prints ``RESULT {json}``.

``python -m tests.support.fal_edit RUN_ID MODEL_ID IMAGE_PATH`` with the environment from ``prepare_fal_env``.
"""

from __future__ import annotations

import asyncio
import json
import sys

from prefect import flow

from reelflow.core.domain import ImageParams, MediaRef
from reelflow.jobs.fal import run_edit_image


@flow(name="edit_image_probe")
async def edit(run_id: str, model_id: str, path: str) -> dict[str, object]:
    image = MediaRef(path=path, content_type="image/png")
    params = ImageParams(prompt="make it dusk", width=480, height=320, seed=4)
    return (await run_edit_image(run_id, model_id, image, params)).model_dump(mode="json")


if __name__ == "__main__":
    run_id, model_id, path = sys.argv[1:4]
    print("RESULT " + json.dumps(asyncio.run(edit(run_id, model_id, path))), flush=True)
