"""Batches: items from folders/files/lists, failures that hurt no other item, re-runs, and two workers
sharing the ``fal`` limit on a SQLite and on a PostgreSQL Prefect server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)

from reelflow.core.batch import batch_id_for, build_items
from reelflow.errors import SpecError
from reelflow.orchestration import prefect_server
from reelflow.settings import Settings, get_settings
from reelflow.storage.keys import object_key
from reelflow.store import repo
from tests.emulators.fal import EmulatorConfig, FalEmulator
from tests.support.cli import run_cli
from tests.support.deployments import setup_stack, worker_of, workers
from tests.support.files import make_image, sha256_file
from tests.support.pg_cluster import pg_cluster

BATCH_TIMEOUT_S = 420


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_image(folder / f"img{i:02d}.png", size=(96 + 2 * i, 64)) for i in range(count)]


def _batch(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    done = run_cli("batch", *args, "--json", env=env, timeout=BATCH_TIMEOUT_S)
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}") from exc


def test_items_from_a_folder_a_csv_a_jsonl_file_and_a_list(tmp_path: Path) -> None:
    images = _images(tmp_path / "in", 2)
    (tmp_path / "in" / "prompts.txt").write_text("drift left\n\nzoom in\n")
    folder = build_items(str(tmp_path / "in"), defaults={"model": "local-kenburns", "fps": 8})
    assert [(Path(i.spec["image"]).name, i.spec["prompt"]) for i in folder] == [
        ("img00.png", "drift left"), ("img00.png", "zoom in"), ("img01.png", "drift left"), ("img01.png", "zoom in")]
    assert all(i.spec["fps"] == 8 and Path(i.spec["image"]).is_absolute() for i in folder)
    assert build_items(str(tmp_path / "in"), prompts=["only"], defaults={"model": "m"})[1].spec["prompt"] == "only"

    (tmp_path / "specs.csv").write_text("image,prompt,duration,seed,fps\nin/img00.png,a,1.5,7,\nin/img01.png,b,2,,12\n")
    rows = build_items(str(tmp_path / "specs.csv"), defaults={"model": "local-kenburns"})
    assert rows[0].spec == {"model": "local-kenburns", "image": str(images[0]), "prompt": "a", "duration": 1.5,
                            "seed": 7}
    assert rows[1].spec["duration"] == 2.0 and rows[1].spec["fps"] == 12
    again = build_items(str(tmp_path / "specs.csv"), defaults={"model": "local-kenburns"})[1].spec["seed"]
    assert isinstance(rows[1].spec["seed"], int) and rows[1].spec["seed"] == again, \
        "an item without a seed gets one derived from it, so a re-run of the batch finds it again"

    (tmp_path / "specs.jsonl").write_text('{"image": "in/img01.png", "model": "x", "frames": 5}\n\n')
    assert build_items(str(tmp_path / "specs.jsonl"))[0].spec == {"image": str(images[1]), "model": "x", "frames": 5}

    listed = build_items([str(images[0]), {"image": "https://example.com/a.png", "prompt": "p"}],
                         prompts=["one", "two"], defaults={"model": "m"})
    assert [i.spec["prompt"] for i in listed] == ["one", "two", "p"]
    assert listed[2].spec["image"] == "https://example.com/a.png"

    assert batch_id_for(folder) == batch_id_for(build_items(str(tmp_path / "in"),
                                                            defaults={"model": "local-kenburns", "fps": 8}))
    assert batch_id_for(folder) != batch_id_for(rows)
    for bad in (str(tmp_path / "missing"), str(tmp_path / "in" / "prompts.txt")):
        with pytest.raises(SpecError):
            build_items(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no items"):
        build_items(str(tmp_path / "empty"))
    assert build_items(str(tmp_path / "nowhere"), allow_empty=True) == []


async def _artifact_rows(key: str) -> list[dict]:
    async with PrefectClient(os.environ["PREFECT_API_URL"],
                                 auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else data


def test_failed_items_spare_the_others_and_a_rerun_renders_only_them(tmp_path: Path) -> None:
    images = _images(tmp_path / "ten", 10)
    storage = get_settings().storage_path
    broken = [storage / object_key(sha256_file(p), "image/png", "input.png") for p in (images[3], images[7])]
    for target, source in zip(broken, (images[3], images[7]), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\0" * source.stat().st_size)
    args = (str(tmp_path / "ten"), "--model", "local-kenburns", "--prompt", "drift", "--duration", "0.5",
            "--fps", "8", "--resolution", "96x64", "--via", "local")

    code, first = _batch(*args)
    assert code == 1, first
    by_item = {Path(row["item"].split(": ")[1].split(" · ")[0]).stem: row for row in first["items"]}
    assert first["counts"] == {"completed": 8, "failed": 2} and first["total"] == 10
    for name in ("img03", "img07"):
        assert by_item[name]["status"] == "failed" and "cannot identify image file" in by_item[name]["error"]
    assert all(row["video"] and Path(row["video"]).is_file() for n, row in by_item.items() if n not in
               ("img03", "img07"))
    table = asyncio.run(_artifact_rows(first["batch_id"]))
    assert sorted(row["status"] for row in table) == ["completed"] * 8 + ["failed"] * 2

    for target in broken:
        target.unlink()
    code, second = _batch(*args)
    assert code == 0, second
    assert second["batch_id"] == first["batch_id"]
    assert second["counts"] == {"completed": 10} and second["cached"] == 8
    rendered = {row["run_id"] for row in second["items"] if not row["cached"]}
    assert rendered.isdisjoint(row["run_id"] for row in first["items"]) and len(rendered) == 2
    runs, total = repo.list_runs(batch_id=first["batch_id"], limit=100)
    assert total == 12 and sorted(r.status for r in runs) == ["completed"] * 10 + ["failed"] * 2


@pytest.fixture(scope="module")
def fal_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalEmulator]:
    config = EmulatorConfig(processing_s=1.5, account_concurrency=10)
    with FalEmulator(cert_dir=tmp_path_factory.mktemp("fal-certs"), config=config) as emu:
        yield emu


@pytest.fixture(params=["sqlite", "postgresql"])
def api_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's SQLite server, or a Prefect server of its own on a throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        yield os.environ["PREFECT_API_URL"]
        return
    settings = Settings(home=tmp_path_factory.mktemp("pg-prefect"))
    session_server = {name: os.environ[name] for name in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING")}
    with pg_cluster() as database_url:
        server = prefect_server.start_server(settings, port=0, database_url=database_url)  # points this process at it
        try:
            yield server.api_url
        finally:
            prefect_server.stop_server(settings)
            os.environ.update(session_server)  # the tests after this one talk to the session's server again


async def _fal_slots(api_url: str) -> tuple[int, int]:
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        limit = await client.read_global_concurrency_limit_by_name("fal")
    return limit.limit, limit.active_slots


def test_two_workers_share_a_batch_and_the_fal_limit(api_url: str, fal_emulator: FalEmulator,
                                                     tmp_path: Path) -> None:
    fal_emulator.reset()
    fal_env = fal_emulator.env()
    setup_stack(api_url, env=fal_env)
    _images(tmp_path / "twelve", 3)
    seed = "11" if api_url == os.environ["PREFECT_API_URL"] else "12"
    with workers(api_url, tmp_path / "logs", 2, limit=4, env=fal_env) as started:
        code, summary = _batch(str(tmp_path / "twelve"), "--model", "wan-2.5-i2v", "--seed", seed,
                               *[arg for p in ("a", "b", "c", "d") for arg in ("--prompt", f"shot {p}")],
                               "--via", "deployment", "--max-in-flight", "12",
                               env={**fal_env, "PREFECT_API_URL": api_url})
    assert code == 0, summary
    assert summary["counts"] == {"completed": 12} and summary["cached"] == 0
    assert summary["cost_usd"] == pytest.approx(12 * 0.5)
    flow_runs = [repo.get_run(row["run_id"]).prefect_flow_run_id for row in summary["items"]]
    ran_on = asyncio.run(worker_of(api_url, [f for f in flow_runs if f]))
    assert len(ran_on) == 12 and set(ran_on.values()) == {w.worker_name for w in started}
    stats = fal_emulator.stats()
    assert stats["submits"]["total"] == 12 and stats["completed"] == 12
    assert stats["max_in_progress"] == 2, "the fal limit of 2 held across both workers, and was used"
    assert asyncio.run(_fal_slots(api_url)) == (2, 0), "no slot leaked"


async def _flow_run_end(api_url: str, flow_run_id: str) -> tuple[str, list]:
    async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
        deadline = asyncio.get_running_loop().time() + BATCH_TIMEOUT_S
        while not (flow_run := await client.read_flow_run(UUID(flow_run_id))).state.is_final():
            assert asyncio.get_running_loop().time() < deadline, f"batch flow run still {flow_run.state.name}"
            await asyncio.sleep(0.5)
        children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(flow_run_id)])))
    return flow_run.state.name, children


def test_a_submitted_batch_runs_on_a_worker_with_its_items_as_child_flow_runs(tmp_path: Path) -> None:
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    _images(tmp_path / "pair", 2)
    with workers(api_url, tmp_path / "logs", 1, limit=3):
        done = run_cli("batch", str(tmp_path / "pair"), "--model", "local-kenburns", "--duration", "0.5", "--fps", "8",
                       "--resolution", "96x64", "--prompt", "submitted", "--submit", "--json")
        assert done.returncode == 0, done.stderr
        submitted = json.loads(done.stdout)
        state, children = asyncio.run(_flow_run_end(api_url, submitted["prefect_flow_run_id"]))
    assert state == "Completed" and submitted["items"] == 2
    runs, total = repo.list_runs(batch_id=submitted["batch_id"])
    assert total == 2 and {r.status for r in runs} == {"completed"}
    assert {str(c.id) for c in children} == {r.prefect_flow_run_id for r in runs}


def test_a_batch_with_an_item_of_unknown_cost_costs_unknown_not_the_sum_of_the_others() -> None:
    from flows.batch_pipeline import batch_cost
    from reelflow.core.batch import ItemResult
    from reelflow.core.money import usd_text

    priced = ItemResult(item="a", status="completed", run_id="a" * 32, cost_usd=0.25)
    unpriced = ItemResult(item="b", status="completed", run_id="b" * 32, cost_usd=None)
    failed = ItemResult(item="c", status="failed", run_id="c" * 32, cost_usd=None)
    assert batch_cost([priced, failed]) == Decimal("0.25")
    assert batch_cost([priced, unpriced]) is None
    assert usd_text(batch_cost([priced, unpriced])) == "unknown" and usd_text(0.25) == "$0.2500"
