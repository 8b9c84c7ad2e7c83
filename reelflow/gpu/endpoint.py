"""Loading and saving the GpuEndpoint block (through the Prefect API) under the configured name.

The only writer of the block's local note (``reelflow.core.gpu_mirror``): on every load and save.
"""

from __future__ import annotations

from blocks.gpu_endpoint import GpuEndpoint
from reelflow.core.domain import GPU_URL_FIELD
from reelflow.core.gpu_mirror import write_mirror
from reelflow.core.netguard import check_public_url
from reelflow.errors import ModelUnavailableError
from reelflow.settings import get_settings


def block_name(name: str | None = None) -> str:
    return name or get_settings().gpu_block


async def find_endpoint(name: str | None = None) -> GpuEndpoint | None:
    """The saved block, or None when there is none under that name."""
    name = block_name(name)
    try:
        gpu = await GpuEndpoint.aload(name)
    except ValueError as exc:
        if "Unable to find block document" in str(exc):
            return None
        raise
    write_mirror(name, gpu.mirror_fields())
    return gpu


async def load_endpoint(model_id: str, name: str | None = None) -> GpuEndpoint:
    """The saved block; ``ModelUnavailableError`` (naming the fix) when nothing is configured."""
    gpu = await find_endpoint(name)
    if gpu is None:
        raise ModelUnavailableError(model_id, [f"no GPU endpoint is saved as block '{block_name(name)}': "
                                               "run `reelflow gpu set --comfyui-url URL` (see README)"])
    return gpu


def check_service_urls(gpu: GpuEndpoint) -> None:
    """The ComfyUI/SwarmUI URLs (given, or discovered through the vast.ai portal) must be public addresses unless
    REELFLOW_ALLOW_PRIVATE_URLS is set or the GPU is declared ``local`` (this machine or your network)."""
    for field in GPU_URL_FIELD.values():
        if url := getattr(gpu, field):
            check_service_url(gpu, field, url)


def check_service_url(gpu: GpuEndpoint, field: str, url: str) -> None:
    """One of the GPU's service URLs, checked as :func:`check_service_urls` checks them."""
    check_public_url(url, field=field, allow_private=get_settings().allow_private_urls or gpu.provider == "local")


async def save_endpoint(gpu: GpuEndpoint, name: str | None = None) -> None:
    """Save the block (after :func:`check_service_urls`) and its secret-free local note."""
    check_service_urls(gpu)
    name = block_name(name)
    await gpu.asave(name, overwrite=True)
    write_mirror(name, gpu.mirror_fields())
