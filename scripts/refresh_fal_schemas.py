"""Refresh tests/fixtures/fal_schemas/ from fal's published OpenAPI schemas (needs internet, no key).

    python scripts/refresh_fal_schemas.py            # every curated fal model of the catalog
    python scripts/refresh_fal_schemas.py fal-ai/veo2/image-to-video

Each fixture is fal's schema for the endpoint as served at
https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<endpoint>, with where and when it was read
(info.x-reelflow-source). Then run tests/test_fal_schema_drift.py: a renamed field or a removed choice
fails there, before a user pays for a run that fal rejects.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from reelflow.core.catalog import builtin_catalog
from reelflow.providers.fal.openapi import input_fields, openapi_url

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "fal_schemas"


def refresh(endpoint: str, client: httpx.Client) -> Path:
    url = openapi_url(endpoint)
    response = client.get(url)
    response.raise_for_status()
    doc = response.json()
    input_fields(doc, endpoint)  # fails loudly on a page that is not the endpoint's schema
    doc.setdefault("info", {})["x-reelflow-source"] = f"fetched from {url} on {datetime.now(UTC):%Y-%m-%d}"
    path = FIXTURES / f"{endpoint}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    endpoints = argv or sorted({m.endpoint for m in builtin_catalog().models if m.backend == "fal"})
    failed = 0
    with httpx.Client(timeout=30.0, follow_redirects=True) as client:
        for endpoint in endpoints:
            try:
                print(f"{endpoint}: {refresh(endpoint, client)}")
            except (httpx.HTTPError, ValueError) as exc:
                failed += 1
                print(f"{endpoint}: FAILED ({type(exc).__name__}: {exc}); fal may have retired it", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
