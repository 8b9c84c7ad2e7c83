"""The original system's endpoints: start an image-to-video run on your GPU through ComfyUI or SwarmUI."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from reelflow.errors import ApiError
from reelflow.web.auth import require_token
from reelflow.web.schemas import CompatVideoRequest, RunOut
from reelflow.web.services.present import run_out
from reelflow.web.services.submit import submit

router = APIRouter(prefix="/api", tags=["compatibility"])
COMFYUI_MODEL = "wan-2.2-i2v-comfyui"
SWARMUI_MODEL = "wan-2.2-i2v-swarmui"
ERRORS = {200: {"description": "An identical finished run, from cache, with its video_url"},
          401: {"description": "Missing or wrong bearer token"},
          409: {"description": "The GPU backend is not configured"}, 422: {"description": "Bad input"}}


def _spec(body: CompatVideoRequest, model: str) -> dict[str, object]:
    if body.image is not None and body.image_url is not None and body.image != body.image_url:
        raise ApiError(422, "give image or image_url, not both", "image_url")
    if (body.width is None) != (body.height is None):
        raise ApiError(422, "give width and height together", "width")
    resolution = f"{body.width}x{body.height}" if body.width is not None else body.resolution
    if body.width is not None and body.resolution is not None:
        raise ApiError(422, "give resolution or width and height, not both", "resolution")
    spec = {"model": model, "image": body.image or body.image_url, "prompt": body.prompt,
            "negative_prompt": body.negative_prompt, "duration": body.duration, "frames": body.frames,
            "fps": body.fps, "resolution": resolution, "seed": body.seed}
    if spec["image"] is None:
        raise ApiError(422, "an input image is needed: an http(s) URL or 'upload:<id>'", "image")
    return {key: value for key, value in spec.items() if value is not None}


def _start(body: CompatVideoRequest, model: str, request: Request, response: Response) -> RunOut:
    prepared = submit(_spec(body, model), request.app.state.launcher, force=body.force)
    if prepared.cached:
        response.status_code = 200
    return run_out(prepared.run)


@router.post("/vastai/generate-video", status_code=201, response_model=RunOut, responses=ERRORS,
             dependencies=[Depends(require_token)])
def vastai_generate_video(body: CompatVideoRequest, request: Request, response: Response) -> RunOut:
    """Wan 2.2 I2V on your GPU through ComfyUI (model wan-2.2-i2v-comfyui). Returns the run; follow it with
    GET /api/runs/{run_id} or its events; ``video_url`` is set once it completes."""
    return _start(body, COMFYUI_MODEL, request, response)


@router.post("/swarm/generate-video", status_code=201, response_model=RunOut, responses=ERRORS,
             dependencies=[Depends(require_token)])
def swarm_generate_video(body: CompatVideoRequest, request: Request, response: Response) -> RunOut:
    """Wan 2.2 I2V on your GPU through SwarmUI (model wan-2.2-i2v-swarmui); otherwise as above."""
    return _start(body, SWARMUI_MODEL, request, response)
