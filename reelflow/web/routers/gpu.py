"""``/api/gpu/config``: the GPU settings (the original system's fields), backed by the GpuEndpoint Block."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

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
