"""Input images over HTTP: an http(s) URL (public hosts only, unless allowed) or an upload id.

A server file path is never accepted from a client: it would let a caller read the server's files.
"""

from __future__ import annotations

import re
from pathlib import Path

from reelflow.core.inputs import IMAGE_TYPES
from reelflow.core.netguard import check_public_url
from reelflow.errors import SpecError
from reelflow.settings import get_settings
from reelflow.storage.keys import object_key
from reelflow.storage.local import LocalStorage

UPLOAD_PREFIX = "upload:"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def upload_storage() -> LocalStorage:
    """Uploads are staged in the local storage folder; a run copies its input to its own storage target."""
    return LocalStorage(get_settings().storage_path)


def upload_ref(sha256: str) -> str:
    return UPLOAD_PREFIX + sha256


def upload_path(sha256: str) -> Path | None:
    storage = upload_storage()
    for content_type, _ in IMAGE_TYPES.values():
        path = storage.path_for(object_key(sha256, content_type))
        if path.is_file():
            return path
    return None


def resolve_image(value: str | None, field: str = "image") -> str | None:
    """What ``prepare_run`` gets for a client's image: a checked URL, or the stored upload's path."""
    if value is None:
        return None
    if value.startswith(UPLOAD_PREFIX):
        sha = value.removeprefix(UPLOAD_PREFIX).lower()
        path = upload_path(sha) if _SHA256.match(sha) else None
        if path is None:
            raise SpecError(field, f"no upload with id '{sha[:80]}'; upload the image first (POST /api/uploads)")
        return str(path)
    if value.startswith(("http://", "https://")):
        check_public_url(value, field=field, allow_private=get_settings().allow_private_urls)
        return value
    raise SpecError(field, "give an http(s) URL or 'upload:<id>' from POST /api/uploads; "
                    "file paths on the server are not accepted over HTTP")


def client_ref(value: str | None) -> str | None:
    """The reverse of :func:`resolve_image` for display: a staged upload's path shows as ``upload:<id>``."""
    if not value or value.startswith(("http://", "https://")):
        return value
    path = Path(value)
    sha = path.stem
    if _SHA256.match(sha) and upload_path(sha) == path:
        return upload_ref(sha)
    return value
