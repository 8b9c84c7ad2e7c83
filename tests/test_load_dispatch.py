"""``POST /api/runs`` answers once the run is recorded; starting it is the dispatcher's job, which rides out a
Prefect server answering 503 and starts again a flow run that Prefect crashed before the flow began.

``reelflow serve --via deployment`` runs as a subprocess (the way users start it) and reaches the session's Prefect
server through a proxy in this process that can hold or refuse ``create_flow_run`` calls; a real process worker
renders the runs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import State
from prefect.states import Crashed, Failed
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelflow.orchestration import prefect_server
from reelflow.store import repo
from tests.emulators.common.server import ServerThread
from tests.support.cli import ROOT
from tests.support.deployments import QUICK, read_flow_run, setup_stack, workers
from tests.support.polling import wait_until
from tests.support.web_api import answers, auth_headers

HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding"})


@dataclass
class FlakyCreate:
    """A proxy to the Prefect API whose ``create_flow_run`` calls wait for ``release`` and then answer 503
    ``busy`` times before they reach the server."""

    upstream: str
    busy: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    refused: int = 0
    created: int = 0

    def app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            path = request.path_params["path"]
            if path.endswith("/create_flow_run"):
                await asyncio.to_thread(self.release.wait)
                if self.refused < self.busy:
                    self.refused += 1
                    return Response('{"exception_message": "database is locked"}', status_code=503,
                                    media_type="application/json")
            async with httpx.AsyncClient(timeout=60) as client:
                answer = await client.request(
                    request.method, f"{self.upstream}/{path}", params=request.query_params,
                    content=await request.body(),
                    headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS})
            if path.endswith("/create_flow_run") and answer.status_code < 300:
                self.created += 1
            return Response(answer.content, status_code=answer.status_code,
                            headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS})

        return Starlette(routes=[Route("/api/{path:path}", forward, methods=["GET", "POST", "PATCH", "PUT",
                                                                             "DELETE"])])


@contextmanager
def served_through(proxy: FlakyCreate, log: Path) -> Iterator[str]:
    """The proxy on a free port and ``reelflow serve --via deployment`` whose Prefect API is that proxy."""
    thread = ServerThread(proxy.app(), name="flaky-prefect")
    thread.start()
    port = prefect_server.free_port(0, "the test API")
    env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{thread.port}/api"}
    with log.open("wb") as out:
        serve = subprocess.Popen([sys.executable, "-m", "reelflow.cli.main", "serve", "--port", str(port),
                                  "--via", "deployment"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(base) or serve.poll() is not None, 90, "reelflow serve to answer")
        assert serve.poll() is None, log.read_text()[-3000:]
        yield base
    finally:
        proxy.release.set()
        serve.terminate()
        serve.wait(30)
        thread.stop()


def _post_run(base: str, prompt: str) -> httpx.Response:
    image = (ROOT / "reelflow" / "assets" / "sample.jpg").read_bytes()
    uploaded = httpx.post(f"{base}/api/uploads", files={"file": ("s.jpg", image, "image/jpeg")}, timeout=30,
                          headers=auth_headers())
    assert uploaded.status_code == 201, uploaded.text
    return httpx.post(f"{base}/api/runs", json={**QUICK, "image": uploaded.json()["image"], "prompt": prompt,
                                                "force": True}, timeout=30, headers=auth_headers())


def _run(base: str, run_id: str) -> dict:
    return httpx.get(f"{base}/api/runs/{run_id}", timeout=10, headers=auth_headers()).json()


@pytest.fixture(scope="module")
def deployed() -> str:
    api_url = os.environ["PREFECT_API_URL"]
    setup_stack(api_url)
    return api_url


def test_a_post_answers_before_the_flow_run_exists_and_the_run_completes_through_503s(
        deployed: str, tmp_path: Path) -> None:
    proxy = FlakyCreate(upstream=deployed.rstrip("/"), busy=3)
    with workers(deployed, tmp_path, 1), served_through(proxy, tmp_path / "serve.log") as base:
        created = _post_run(base, "dispatched while the server is busy")
        assert created.status_code == 201, created.text
        assert proxy.created == 0 and created.json()["prefect_flow_run_id"] is None, \
            "the POST waited for the Prefect server"
        run_id = created.json()["run_id"]
        assert _run(base, run_id)["status"] == "queued"
        proxy.release.set()
        _completes_through_refusals(base, run_id, proxy, refused=3)


def _completes_through_refusals(base: str, run_id: str, proxy: FlakyCreate, *, refused: int) -> None:
    """The run completes, its flow run created once after ``refused`` 503s, and Prefect agrees."""
    ended = wait_until(lambda: (found := _run(base, run_id))["status"] in ("completed", "failed", "cancelled")
                       and found, 240, "the run to end")
    assert ended["status"] == "completed", ended
    assert proxy.refused == refused and proxy.created == 1, (proxy.refused, proxy.created)
    _prefect_completes(ended["prefect_flow_run_id"])


def _prefect_completes(flow_run_id: str) -> None:
    """The store records the end first; Prefect has the flow run Completed a moment later, as the flow returns."""
    wait_until(lambda: str(read_flow_run(flow_run_id).state_type.value) in ("COMPLETED", "FAILED", "CRASHED",
                                                                          "CANCELLED"), 60, "Prefect's final state")
    assert str(read_flow_run(flow_run_id).state_type.value) == "COMPLETED"


def _crash(api_url: str, flow_run_id: str, end: Callable[..., State] = Crashed) -> None:
    async def crash() -> None:
        async with PrefectClient(api_url, auth_string=os.environ.get("PREFECT_API_AUTH_STRING")) as client:
            await client.set_flow_run_state(UUID(flow_run_id), end(message="the worker could not submit it"),
                                            force=True)

    asyncio.run(crash())


def test_a_flow_run_crashed_before_the_flow_began_is_started_again(deployed: str, tmp_path: Path) -> None:
    """No worker yet: the flow run waits Scheduled, Prefect crashes it (as a worker does on a 503), and the run,
    still queued in the store, gets a new flow run that the worker started afterwards completes."""
    proxy = FlakyCreate(upstream=deployed.rstrip("/"))
    proxy.release.set()
    with served_through(proxy, tmp_path / "serve.log") as base:
        run_id = _post_run(base, "crashed before it began").json()["run_id"]
        first = wait_until(lambda: _run(base, run_id)["prefect_flow_run_id"], 60, "the first flow run")
        _crash(deployed, first)
        second = wait_until(lambda: (found := _run(base, run_id)["prefect_flow_run_id"]) != first and found, 60,
                            "a second flow run")
        assert _run(base, run_id)["status"] == "queued"
        with workers(deployed, tmp_path, 1):
            ended = wait_until(lambda: (found := _run(base, run_id))["status"] in ("completed", "failed",
                                                                                     "cancelled") and found,
                               240, "the run to end")
        assert ended["status"] == "completed", ended
        assert ended["prefect_flow_run_id"] == second
        _prefect_completes(second)
        assert str(read_flow_run(first).state_type.value) == "CRASHED"
        assert any("crashed before the flow started" in e.message for e in repo.events_after(run_id))


@pytest.mark.parametrize("end", [Crashed, Failed], ids=["crashed", "failed"])
def test_reconcile_starts_again_a_queued_run_whose_flow_run_crashed_while_its_submitter_lives(
        deployed: str, tmp_path: Path, end: Callable[..., State]) -> None:
    """This process records and triggers the run (and stays alive, so the run is no orphan), Prefect crashes (or
    fails) the flow run before any worker took it; ``reelflow serve`` (a second process) reconciles it at start."""
    from reelflow.runs import dispatch
    from reelflow.runs.prepare import prepare_run

    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    run = prepare_run({**QUICK, "image": image, "prompt": "crashed while its submitter lives"}, force=True).run
    first = asyncio.run(dispatch.trigger(run, force=True))
    _crash(deployed, first, end)
    proxy = FlakyCreate(upstream=deployed.rstrip("/"))
    proxy.release.set()
    with served_through(proxy, tmp_path / "serve.log") as base, workers(deployed, tmp_path, 1):
        ended = wait_until(lambda: (found := _run(base, run.run_id))["status"] in ("completed", "failed",
                                                                                     "cancelled") and found,
                           240, "the run to end")
    assert ended["status"] == "completed", ended
    assert ended["prefect_flow_run_id"] != first
    assert any("before the flow began" in e.message for e in repo.events_after(run.run_id))


def test_a_retry_answers_before_the_flow_run_exists_and_the_retried_run_completes(
        deployed: str, tmp_path: Path) -> None:
    """``POST /retry`` of a failed run answers once the retry is recorded; the dispatcher starts it afterwards,
    through a Prefect server that answers 503 first."""
    from reelflow.runs.prepare import prepare_run

    image = str(ROOT / "reelflow" / "assets" / "sample.jpg")
    run_id = prepare_run({**QUICK, "image": image, "prompt": "failed, then retried while the server is busy"},
                         force=True).run.run_id
    repo.mark_run(run_id, "failed", error="failed on purpose, before it was started")
    proxy = FlakyCreate(upstream=deployed.rstrip("/"), busy=2)
    with workers(deployed, tmp_path, 1), served_through(proxy, tmp_path / "serve.log") as base:
        retried = httpx.post(f"{base}/api/runs/{run_id}/retry", timeout=30, headers=auth_headers())
        assert retried.status_code == 200, retried.text
        assert proxy.created == 0, "the retry waited for the Prefect server"
        proxy.release.set()
        _completes_through_refusals(base, run_id, proxy, refused=2)
