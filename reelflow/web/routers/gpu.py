"""``/api/gpu/config``: the GPU settings (the original system's fields), backed by the GpuEndpoint Block."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from reelflow.errors import ReelflowError
from reelflow.gpu.setup import check, discover
from reelflow.web.auth import require_token
from reelflow.web.schemas import GpuConfigIn
from reelflow.web.services.gpu_config import check_urls, config_out, load_block, merge, save_block

router = APIRouter(prefix="/api/gpu", tags=["gpu"])
SHAPE = ("Every GpuEndpoint field (secrets as '********', or null when unset), plus gpu_provider (= provider), "
         "block_name, saved and checked (what each verified URL answered).")


@router.get("/config", response_model=dict[str, Any], response_description=SHAPE)
async def get_config() -> dict[str, Any]:
    """The GPU settings: comfyui_url, swarmui_url, gpu_provider (none | local | vastai), vastai_instance_id, ..."""
    block, saved = await load_block()
    return config_out(block, saved)


@router.put("/config", response_model=dict[str, Any], response_description=SHAPE,
            dependencies=[Depends(require_token)],
            responses={401: {"description": "Missing or wrong bearer token"},
                       422: {"description": "A bad value, or a URL that did not answer like ComfyUI/SwarmUI"}})
async def put_config(body: GpuConfigIn, verify: bool = Query(True, description="Check the URLs answer first.")
                     ) -> dict[str, Any]:
    """Change the GPU settings: fields left out are kept. A ComfyUI URL must answer GET /system_stats and a
    SwarmUI URL POST /API/GetNewSession (5 s each) before anything is saved, unless ``verify=false``."""
    block, _ = await load_block()
    new = merge(block, body)
    checked = await check_urls(new, body, verify=verify)
    await save_block(new)
    return config_out(new, True, checked)


class CheckOut(BaseModel):
    ok: bool
    lines: list[str]
    error: str | None = None


@router.post("/discover", response_model=dict[str, Any], response_description=SHAPE,
             dependencies=[Depends(require_token)],
             responses={409: {"description": "Not a vast.ai endpoint with an instance id and API key"}})
async def discover_urls() -> dict[str, Any]:
    """Find the vast.ai instance's ComfyUI/SwarmUI URLs (Instance Portal tunnels) and save them, as
    ``reelflow gpu discover`` does; answers the settings as saved."""
    _, gpu, _ = await discover(None)
    return config_out(gpu, True)


@router.post("/check", response_model=CheckOut, dependencies=[Depends(require_token)])
async def check_endpoint() -> CheckOut:
    """Health check and model preflight, as ``reelflow gpu check``: what was found, and what failed first."""
    lines: list[str] = []
    try:
        await check(None, lines.append)
    except ReelflowError as exc:
        return CheckOut(ok=False, lines=lines, error=str(exc))
    return CheckOut(ok=True, lines=lines)
