"""``/api/uploads``: input images, checked for size and type, stored through the storage layer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, UploadFile
from PIL import Image

from reelflow.core.inputs import inspect_image
from reelflow.errors import ApiError, ImageTooLargeError, SpecError
from reelflow.settings import get_settings
from reelflow.web.auth import require_token
from reelflow.web.schemas import UploadOut
from reelflow.web.services.images import upload_ref, upload_storage
from reelflow.web.services.present import MEDIA_PREFIX

router = APIRouter(prefix="/api/uploads", tags=["uploads"])
CHUNK = 1024 * 1024


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while block := await upload.read(CHUNK):
        size += len(block)
        if size > limit:
            raise ApiError(413, f"the file is over {limit} bytes (REELFLOW_MAX_INPUT_BYTES)", "file")
        chunks.append(block)
    return b"".join(chunks)


@router.post("", status_code=201, response_model=UploadOut, dependencies=[Depends(require_token)],
             responses={401: {"description": "Missing or wrong bearer token"},
                        413: {"description": "Too large"}, 415: {"description": "Not a PNG, JPEG or WebP image"},
                        422: {"description": "No file field"}})
async def upload(file: UploadFile = File(description="A PNG, JPEG or WebP image.")) -> UploadOut:
    """Store an input image; use the returned ``image`` (``upload:<id>``) in a run."""
    data = await read_limited(file, get_settings().max_input_bytes)
    if not data:
        raise ApiError(422, "the file is empty", "file")
    name = (file.filename or "upload")[:200]
    try:
        image = inspect_image(data, name, field="file")
    except ImageTooLargeError as exc:
        raise ApiError(413, exc.message, "file") from None
    except SpecError as exc:
        raise ApiError(415, exc.message, "file") from None
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"the image has too many pixels to open safely ({exc})", "file") from None
    stored = upload_storage().put_bytes(image.data, image.content_type, f"upload{image.extension}")
    return UploadOut(upload_id=image.sha256, image=upload_ref(image.sha256), url=MEDIA_PREFIX + stored.key,
                     content_type=image.content_type, bytes=stored.bytes, width=image.width, height=image.height)
