"""``GET /api/spend`` over the REST API: exact sums of recorded costs per day and per model, runs of unknown
cost counted as unknown (never as free), month to date, the most expensive runs, and a bad range refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from reelflow.store.db import session_scope
from reelflow.store.models import Run


def record(model: str, cost: float | None, created: datetime, status: str = "completed",
           prompt: str = "a test run") -> str:
    """A finished run as the store has it once a provider reported (or did not report) its cost."""
    run_id = uuid.uuid4().hex
    with session_scope() as s:
        s.add(Run(id=run_id, idempotency_key=uuid.uuid4().hex, model_id=model, backend="fal", status=status,
                  spec={"model": model, "prompt": prompt}, cost_usd=cost, created_at=created, finished_at=created))
    return run_id


def test_spend_per_day_and_model_with_unknown_costs(client: httpx.Client) -> None:
    today = datetime.now(UTC).date()
    noon = datetime.combine(today, datetime.min.time()) + timedelta(hours=12)
    model = f"spend-model-{uuid.uuid4().hex[:6]}"
    other = f"spend-other-{uuid.uuid4().hex[:6]}"
    record(model, 0.1, noon)
    record(model, 0.2, noon)
    record(model, None, noon)  # a provider that reported no cost
    big = record(other, 7777.5, noon - timedelta(days=1), status="failed", prompt="the expensive one")
    record(other, 1.0, noon, status="running")  # not finished: not counted yet
    record(other, 9.0, noon - timedelta(days=400))  # outside the range

    answer = client.get("/api/spend", params={"since": str(today - timedelta(days=6)), "until": str(today)})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert len(report["days"]) == 7 and report["days"][-1]["day"] == str(today)
    by_model = {m["model"]: m for m in report["models"]}
    assert by_model[model] == {"model": model, "usd": "0.3", "runs": 3, "unknown_cost_runs": 1}  # exact, not 0.300…04
    assert by_model[other] == {"model": other, "usd": "7777.5", "runs": 1, "unknown_cost_runs": 0}
    day = {d["day"]: d for d in report["days"]}
    assert day[str(today)]["unknown_cost_runs"] >= 1
    assert report["total"]["unknown_cost_runs"] >= 1
    top = report["most_expensive"][0]
    assert top["run_id"] == big and top["usd"] == "7777.5" and top["prompt"] == "the expensive one"
    month = report["month_to_date"]
    assert month["runs"] >= 3 and month["unknown_cost_runs"] >= 1

    default = client.get("/api/spend").json()
    assert len(default["days"]) == 30 and default["until"] == str(today)


def test_a_bad_range_is_refused_with_the_field(client: httpx.Client) -> None:
    reversed_ = client.get("/api/spend", params={"since": "2026-03-02", "until": "2026-03-01"})
    assert reversed_.status_code == 422 and reversed_.json()["field"] == "since"
    assert "after until" in reversed_.json()["error"]
    too_long = client.get("/api/spend", params={"since": "2020-01-01", "until": "2026-01-01"})
    assert too_long.status_code == 422 and "at most 366" in too_long.json()["error"]
    assert client.get("/api/spend", params={"since": "yesterday"}).status_code == 422
    assert httpx.get(f"{client.base_url}/api/spend", timeout=10).status_code == 401
