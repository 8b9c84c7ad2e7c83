"""``GET /api/runs`` as the runs gallery uses it, over real HTTP: filters, prompt search, sort, paging that holds
while runs arrive, the card's facts, and a burst of identical requests each answered with what was stored before it."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from reelflow.store import repo
from reelflow.store.db import session_scope
from reelflow.store.models import Run
from tests.emulators.common.media import png_bytes
from tests.support.polling import wait_until
from tests.support.web_api import Served, error_of

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _run(batch: str, *, prompt: str, model: str = "local-kenburns", backend: str = "local", status: str = "completed",
         cost: float | None = None, created: datetime | None = None, pipeline_id: str | None = None) -> str:
    run_id = uuid.uuid4().hex
    repo.create_run(run_id=run_id, idempotency_key=uuid.uuid4().hex, spec={"model": model, "prompt": prompt, "seed": 7},
                    model_id=model, backend=backend, batch_id=batch, pipeline_id=pipeline_id)
    if status != "queued":
        repo.mark_run(run_id, "running")
        repo.mark_run(run_id, status, cost_usd=cost)
    if created is not None:
        with session_scope() as s:
            s.execute(update(Run).where(Run.id == run_id).values(created_at=created))
    return run_id


def _upload(client: httpx.Client) -> str:
    image = png_bytes((40, 90, 160), (320, 192))
    response = client.post("/api/uploads", files={"file": ("in.png", image, "image/png")})
    assert response.status_code == 201, response.text
    return response.json()["image"]


def _ids(client: httpx.Client, **params: Any) -> list[str]:
    response = client.get("/api/runs", params=params)
    assert response.status_code == 200, response.text
    return [r["run_id"] for r in response.json()["runs"]]


def test_filters_and_prompt_search(client: httpx.Client) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    fox = _run(batch, prompt="A red FOX runs", created=DAY)
    owl = _run(batch, prompt="an owl at 100% zoom", status="failed", created=DAY + timedelta(days=1))
    gone = _run(batch, prompt="a fox, cancelled", status="cancelled", backend="fal", model="wan-2.5-i2v",
                created=DAY + timedelta(days=2))
    assert _ids(client, batch_id=batch) == [gone, owl, fox]
    assert _ids(client, batch_id=batch, q="fox") == [gone, fox]
    assert _ids(client, batch_id=batch, q="  Red fox ") == [fox]
    assert _ids(client, batch_id=batch, q="100%") == [owl]
    assert _ids(client, batch_id=batch, q="0% z") == [owl]
    assert _ids(client, batch_id=batch, q="_") == []
    assert _ids(client, batch_id=batch, status="failed,cancelled") == [gone, owl]
    assert _ids(client, batch_id=batch, status="completed") == [fox]
    assert _ids(client, batch_id=batch, model="wan-2.5-i2v") == [gone]
    assert _ids(client, batch_id=batch, backend="local") == [owl, fox]
    assert _ids(client, batch_id=batch, kind="video") == [gone, owl, fox]
    assert _ids(client, batch_id=batch, kind="pipeline") == []
    assert _ids(client, batch_id=batch, since="2026-03-11") == [gone, owl]
    assert _ids(client, batch_id=batch, until="2026-03-11") == [owl, fox]
    assert _ids(client, batch_id=batch, since="2026-03-11T13:00:00+02:00", until="2026-03-11T12:30:00Z") == [owl]
    page = client.get("/api/runs", params={"batch_id": batch, "status": "failed,cancelled", "limit": 1}).json()
    assert page["total"] == 2 and page["next_offset"] == 1

    field, message = error_of(client.get("/api/runs", params={"status": "failed,lost"}), 422)
    assert field == "status" and "'lost'" in message and "cancelled" in message
    field, message = error_of(client.get("/api/runs", params={"since": "last week"}), 422)
    assert field == "since" and "ISO date" in message
    error_of(client.get("/api/runs", params={"kind": "image"}), 422)


def test_sort_by_cost_and_unknown_sort(client: httpx.Client) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    cheap = _run(batch, prompt="cheap", cost=0.05, created=DAY)
    unknown = _run(batch, prompt="unknown price", created=DAY + timedelta(hours=1))
    dear = _run(batch, prompt="dear", cost=1.25, created=DAY + timedelta(hours=2))
    assert _ids(client, batch_id=batch, sort="-cost") == [dear, cheap, unknown]
    assert _ids(client, batch_id=batch, sort="cost") == [cheap, dear, unknown]
    assert _ids(client, batch_id=batch, sort="created_at") == [cheap, unknown, dear]
    assert _ids(client, batch_id=batch) == [dear, unknown, cheap]
    field, message = error_of(client.get("/api/runs", params={"sort": "price"}), 422)
    assert field == "sort" and "'price'" in message and "-created_at" in message and "duration" in message


def test_pages_hold_while_runs_arrive(client: httpx.Client) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    made = [_run(batch, prompt=f"shot {i}", created=DAY + timedelta(minutes=i)) for i in range(5)]
    first = client.get("/api/runs", params={"batch_id": batch, "limit": 2}).json()
    assert [r["run_id"] for r in first["runs"]] == made[:2:-1][:2] and first["total"] == 5
    arrived = _run(batch, prompt="arrived meanwhile")
    pages = [first]
    while pages[-1]["next_offset"] is not None:
        pages.append(client.get("/api/runs", params={"batch_id": batch, "limit": 2, "as_of": first["as_of"],
                                                     "offset": pages[-1]["next_offset"]}).json())
    listed = [r["run_id"] for page in pages for r in page["runs"]]
    assert listed == made[::-1] and {p["total"] for p in pages} == {5}
    assert _ids(client, batch_id=batch)[0] == arrived


def test_a_card_has_what_the_gallery_shows(client: httpx.Client) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    run_id = _run(batch, prompt="poster please", cost=0.5)
    [card] = client.get("/api/runs", params={"batch_id": batch}).json()["runs"]
    assert card["run_id"] == run_id and card["prompt"] == "poster please" and card["seed"] == 7
    assert card["model_name"] == "Local pan & zoom (CPU)" and card["model"] == "local-kenburns"
    assert card["kind"] == "video" and card["batch_id"] == batch and card["cost_usd"] == 0.5
    assert card["elapsed_s"] is not None and card["elapsed_s"] >= 0
    one = client.get(f"/api/runs/{run_id}").json()
    assert {k: one[k] for k in ("prompt", "seed", "model_name", "kind")} == {
        k: card[k] for k in ("prompt", "seed", "model_name", "kind")}


def test_a_burst_answers_each_request_with_what_was_stored_before_it(api: Served) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    _run(batch, prompt="before the burst")

    async def burst() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(base_url=api.url, headers=api.headers, timeout=120,
                                     limits=httpx.Limits(max_connections=200)) as http:
            async def count() -> int:
                page = (await http.get("/api/runs", params={"batch_id": batch})).json()
                return page["total"]

            early = [asyncio.ensure_future(count()) for _ in range(80)]
            stored = threading.Event()
            await asyncio.to_thread(lambda: (_run(batch, prompt="during the burst"), stored.set()))
            assert stored.is_set()
            late = [asyncio.ensure_future(count()) for _ in range(80)]
            return list(await asyncio.gather(*early)), list(await asyncio.gather(*late))

    early, late = asyncio.run(burst())
    assert set(early) <= {1, 2} and set(late) == {2}


def test_bulk_download_streams_a_zip_with_readable_names(client: httpx.Client, tmp_path: Path) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    made = client.post("/api/runs", json={"model": "local-kenburns", "prompt": "A slow pan, over the HILLS at dusk!",
                                          "image": _upload(client), "duration": 1.0, "fps": 8,
                                          "resolution": "160x96", "force": True})
    assert made.status_code in (200, 201), made.text
    run_id = made.json()["run_id"]
    wait_until(lambda: repo.get_run(run_id).status in ("completed", "failed"), timeout=300, what="the run to end")
    pending = _run(batch, prompt="not rendered", status="queued")
    with client.stream("GET", "/api/runs/download", params={"ids": f"{run_id},{pending}"}) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        assert "attachment" in response.headers["content-disposition"]
        target = tmp_path / "runs.zip"
        with target.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        date = repo.get_run(run_id).created_at.strftime("%Y-%m-%d")
        assert names[0] == f"{date}-local-kenburns-a-slow-pan-over-the-{run_id[:8]}.mp4"
        assert re.fullmatch(r"[a-z0-9.-]+", names[0])
        assert archive.read(names[0]) == Path(repo.get_run(run_id).video.path).read_bytes()  # type: ignore[union-attr]
        assert archive.read("missing.txt").decode() == f"{pending}: no video yet\n"
    field, message = error_of(client.get("/api/runs/download", params={"ids": "nope"}), 422)
    assert field == "ids" and "'nope'" in message


def test_runs_of_a_saved_pipeline_are_found_by_it_and_named(client: httpx.Client) -> None:
    batch = f"batch-{uuid.uuid4().hex[:8]}"
    saved = client.post("/api/pipelines", json={"name": f"pans {batch}", "spec": {"model": "local-kenburns"}})
    assert saved.status_code == 201, saved.text
    pipeline_id = saved.json()["pipeline_id"]
    from_it = _run(batch, prompt="from the saved one", pipeline_id=pipeline_id)
    _run(batch, prompt="on its own")
    [card] = client.get("/api/runs", params={"batch_id": batch, "pipeline_id": pipeline_id}).json()["runs"]
    assert card["run_id"] == from_it and card["pipeline_name"] == f"pans {batch}"
    assert client.get(f"/api/runs/{from_it}").json()["pipeline_name"] == f"pans {batch}"
