"""Linking a recorded run to the Prefect flow run that will execute it, before that flow run starts."""

from __future__ import annotations

from sqlalchemy import update

from reelflow.store.db import session_scope
from reelflow.store.models import Run


def link_flow_run(run_id: str, flow_run_id: str, *, replacing: str | None = None) -> None:
    """Record ``flow_run_id`` on the run unless the flow has already recorded itself (it starts fast); with
    ``replacing``, in place of that earlier flow run (which crashed)."""
    current = Run.prefect_flow_run_id.is_(None) if replacing is None else Run.prefect_flow_run_id == replacing
    with session_scope() as s:
        s.execute(update(Run).where(Run.id == run_id, current).values(prefect_flow_run_id=flow_run_id))
