"""``/api/media/<key>``: stored files (videos, posters, inputs) for the browser, with range requests."""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from reelflow.errors import ApiError
from reelflow.settings import get_settings
from reelflow.storage.keys import EXTENSIONS, STORED_KEY

router = APIRouter(prefix="/api/media", tags=["media"])
TYPES = {ext: content_type for content_type, ext in EXTENSIONS.items()}


@router.get("/{key:path}", response_class=FileResponse,
            responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}, "image/png": {}}},
                       404: {"description": "No such stored object"}})
def media(key: str = Path(max_length=200)) -> FileResponse:
    """A stored object by its key (content key or run key, as in a run's outputs)."""
    match = STORED_KEY.match(key)
    root = get_settings().storage_path.resolve()
    path = (root / key).resolve()  # a symlink inside the storage folder must not lead out of it
    if match is None or not path.is_relative_to(root) or not path.is_file():
        raise ApiError(404, f"no stored object '{key[:200]}'", "key")
    return FileResponse(path, media_type=TYPES.get(match.group(1), "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})
