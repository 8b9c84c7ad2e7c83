"""The Prefect server reelflow starts answers a burst of writes without 503s: a write that meets SQLite's lock
is asked again in the server (``reelflow.orchestration.prefect_app``), not handed back to a client whose next try
comes 2 to 32 s later (the stall of issue 17 section 7: a batch's flow runs creating their task runs together).

The session's server (``tests/conftest.py`` starts it as the CLI does) gets plain HTTP requests, with no client
retries, as fast as they can be sent."""

from __future__ import annotations

import asyncio
import os

import httpx

from reelflow.orchestration import prefect_server

BURST = 48
ROUNDS = 3


async def _burst(api_url: str) -> list[int]:
    fresh = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)  # the server drops idle connections
    async with httpx.AsyncClient(base_url=api_url.rstrip("/") + "/", headers=prefect_server.api_headers(),
                                 timeout=120, limits=fresh) as client:
        flow = await client.post("flows/", json={"name": "reelflow-busy-burst"})
        flow.raise_for_status()

        async def one(round_: int, index: int) -> list[int]:
            created = await client.post("flow_runs/", json={"flow_id": flow.json()["id"], "name": f"burst-{index}",
                                                            "state": {"type": "PENDING"}})
            if created.status_code >= 300:
                return [created.status_code]
            flow_run_id = created.json()["id"]
            task = await client.post("task_runs/", json={"flow_run_id": flow_run_id, "task_key": "burst",
                                                         "dynamic_key": f"{round_}-{index}", "name": "burst"})
            state = await client.post(f"flow_runs/{flow_run_id}/set_state",
                                      json={"state": {"type": "RUNNING"}, "force": True})
            return [created.status_code, task.status_code, state.status_code]

        answers = []
        for round_ in range(ROUNDS):
            for codes in await asyncio.gather(*(one(round_, i) for i in range(BURST))):
                answers += codes
        return answers


def test_a_burst_of_flow_and_task_run_writes_gets_no_503() -> None:
    answers = asyncio.run(_burst(os.environ["PREFECT_API_URL"]))
    assert len(answers) == 3 * BURST * ROUNDS
    assert all(code < 300 for code in answers), sorted({c: answers.count(c) for c in answers}.items())
