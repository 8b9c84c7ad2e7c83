"""The ``approve`` step: a person approves, rejects or asks for a redo of what an earlier step made.

It is built on Prefect's own pause with ``wait_for_input``: the flow run shows Paused (Suspended, for a deployment
run) in the Prefect UI with the ``ApprovalInput`` form and a markdown artifact linking what is judged, and every
channel answers through the same ``POST /flow_runs/{id}/resume`` with ``run_input`` that the UI sends: the Prefect
UI itself, ``reelflow approve`` and ``POST /api/runs/{id}/steps/{step}/approve`` (both via ``answer_approval``).

The store keeps one row per approval round in ``steps`` (kind ``approve``, backend ``person``): ``waiting`` while
paused (the run ``waiting`` too), ``answered`` once an answer was sent (so a second answer is refused), then
``completed`` (approved) or ``cancelled`` (rejected, a redo asked, or no answer in time), the decision in its
``detail``. Events record the question and the answer (decision, who: cli, api, python or prefect-ui, the new
prompt or seed). A redo opens a new round with its own pause key, so a suspended run that re-executes from the
top is handed each round's answer again instead of asking anew.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from prefect.artifacts import acreate_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext, TaskRunContext
from prefect.flow_runs import apause_flow_run, aresume_flow_run, asuspend_flow_run
from prefect.input import RunInput, keyset_from_base_key
from pydantic import Field, ValidationError
from sqlalchemy import select, update

from reelflow.core.domain import MediaRef
from reelflow.errors import ReelflowError, SpecError
from reelflow.orchestration.prefect_server import ensure_api
from reelflow.runs import events
from reelflow.store import owners, repo
from reelflow.store.db import session_scope
from reelflow.store.models import Event, Run, RunOwner, Step, utcnow

Decision = Literal["approve", "reject", "redo"]
Via = Literal["cli", "api", "python", "prefect-ui", "timeout"]
DECISIONS: tuple[str, ...] = ("approve", "reject", "redo")
MAX_SEED = 2**32 - 1
POLL_INTERVAL_S = 0.25
"""How often a paused flow asks Prefect whether it was resumed (Prefect's default is 10 s)."""
PAUSING_S = 10.0
PENDING_ANSWER = "pending_answer"  # on a round answered while no process ran the run
"""How long an answer waits for a flow run that is about to pause (its step already says waiting)."""
PREFECT_GRACE_S = 300
"""Prefect's own pause deadline is this much later than the step's, so the step's timeout is what ends it."""
NO_TIMEOUT_S = 10 * 365 * 24 * 3600
WAITING, ANSWERED = "waiting", "answered"
BACKEND = "person"


class ApprovalInput(RunInput):
    """Approve what the step shows, reject it (the run ends cancelled), or ask for a redo with a new seed or an
    edited prompt."""

    decision: Decision = Field(description="approve: go on; reject: end the run, cancelled; redo: render again.")
    prompt: str | None = Field(None, max_length=4000, description="redo only: the edited prompt to render with.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="redo only: the seed to render with.")
    note: str | None = Field(None, max_length=2000, description="Why, for the run's history.")


@dataclass(frozen=True)
class ApprovalAnswer:
    """What came back: ``decision`` is ``timeout`` when no one answered in time and ``on_timeout`` is ``cancel``
    (with ``on_timeout`` ``approve`` it is ``approve``, ``via`` ``timeout``). ``prompt``/``seed`` only for a redo."""

    decision: Literal["approve", "reject", "redo", "timeout"]
    prompt: str | None = None
    seed: int | None = None
    note: str | None = None
    via: Via = "prefect-ui"


class StepNotFoundError(ReelflowError, LookupError):
    """The run has no step of that name."""

    def __init__(self, run_id: str, step: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"run {run_id} has no step '{step}' (its steps: {listed})")
        self.run_id, self.step = run_id, step


class NotWaitingError(ReelflowError):
    """The step is not waiting for an answer (not an approval, answered already, or the run moved on)."""

    def __init__(self, run_id: str, step: str, why: str) -> None:
        super().__init__(f"step '{step}' of run {run_id} is not waiting for an answer: {why}")
        self.run_id, self.step = run_id, step


def _pause_key(step: str, round_no: int) -> str:
    """Prefect pause keys allow letters, digits and dashes only."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", f"approve-{step}-{round_no}").strip("-")


def _artifact_key(run_id: str, step: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"approval-{run_id}-{step}".lower()).strip("-")


def _subject_link(subject: MediaRef | None, subject_url: str | None) -> str | None:
    if subject_url:
        return subject_url
    if subject is not None:
        return subject.url or (f"file://{subject.path}" if subject.path else None)
    return None


# --- the store rows of an approval (one per round) ---------------------------------------------------------------

def _latest_row(session: Any, run_id: str, step: str) -> Step | None:
    return session.scalars(select(Step).where(Step.run_id == run_id, Step.name == step)
                           .order_by(Step.id.desc()).limit(1)).first()


def _open_round(run_id: str, step: str, flow_run_id: str,
                question: dict[str, Any]) -> tuple[int, int, bool, dict[str, Any] | None]:
    """The open round of this approval (one still waiting or answered: a re-executed run gets its answer) or a new
    one; returns (step row id, round number, whether it is new, the answer given while no process ran it)."""
    with session_scope() as s:
        row = _latest_row(s, run_id, step)
        if row is not None and row.status in (WAITING, ANSWERED):
            detail = dict(row.detail or {})
            if row.status == ANSWERED and isinstance(pending := detail.get(PENDING_ANSWER), dict):
                row.detail = {**detail, "flow_run_id": flow_run_id}
                return row.id, int(detail.get("round", 1)), False, pending
            if detail.get("flow_run_id") == flow_run_id:  # this flow run re-executed from the top (suspended)
                return row.id, int(detail.get("round", 1)), False, None
            # Another flow run runs it now (its process died and it was started again): ask this one, anew.
            row.status, row.detail = WAITING, {**detail, **question, "flow_run_id": flow_run_id}
            return row.id, int(detail.get("round", 1)), True, None
        asked = [int(d["round"]) for d in s.scalars(select(Step.detail).where(Step.run_id == run_id,
                                                                              Step.name == step))
                 if isinstance(d, dict) and "round" in d]
        round_no = max(asked, default=0) + 1  # a row planned by the engine before it is asked is not a round
        if row is not None and row.kind == "approve" and row.status not in repo.FINISHED:
            row.backend, row.status = BACKEND, WAITING  # a row the engine opened for this step
        else:
            row = Step(run_id=run_id, name=step, backend=BACKEND, status=WAITING, kind="approve")
            s.add(row)
        row.detail = {**question, "round": round_no, "flow_run_id": flow_run_id}
        row.started_at = utcnow()
        s.flush()
        return row.id, round_no, True, None


def _claim(step_id: int, to: str, *, allowed: tuple[str, ...] = (WAITING,)) -> bool:
    """Move the row from ``allowed`` to ``to`` atomically: of two answers (or an answer and the timeout) one wins."""
    with session_scope() as s:
        done = s.execute(update(Step).where(Step.id == step_id, Step.status.in_(allowed)).values(status=to)
                         .execution_options(synchronize_session=False))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _close_round(step_id: int, status: str, answer: ApprovalAnswer | None, error: str | None) -> None:
    with session_scope() as s:
        row = s.get(Step, step_id)
        assert row is not None
        row.status = status
        row.error = error
        row.finished_at = utcnow()
        row.cost_usd = Decimal(0)  # a person's answer is free; unknown would make the whole run's cost unknown
        if answer is not None:
            row.detail = {**(row.detail or {}), "decision": answer.decision, "via": answer.via,
                          "prompt": answer.prompt, "seed": answer.seed, "note": answer.note}


def _answer_event(run_id: str, step: str, round_no: int) -> dict[str, Any] | None:
    """The answer ``answer_approval`` recorded for this round, if it sent the one that came back."""
    with session_scope(readonly=True) as s:
        rows = s.scalars(select(Event.data).where(Event.run_id == run_id, Event.step == step,
                                                  Event.kind == "approval").order_by(Event.id.desc()).limit(20))
        for data in rows:
            if data and data.get("answer") and data.get("round") == round_no:
                return data
    return None


# --- in the flow --------------------------------------------------------------------------------------------------

def _question(run_id: str, step: str, link: str | None, timeout_s: float | None, on_timeout: str) -> str:
    shown = f"[{link}]({link})" if link else "(no link: see the run's outputs)"
    image = f"\n\n![what is judged]({link})" if link and not link.startswith("file://") else ""
    limit = (f"No answer within {timeout_s:g} s {'approves' if on_timeout == 'approve' else 'cancels the run'}."
             if timeout_s else "It waits until someone answers.")
    return (f"### Approval `{step}` of reelflow run `{run_id}`\n\nWhat is judged: {shown}{image}\n\n"
            "Answer with the form (decision approve, reject or redo; a redo may give a new prompt or seed), or "
            f"`reelflow approve {run_id} {step} [--reject | --redo [--prompt TEXT] [--seed N]]`, or "
            f"`POST /api/runs/{run_id}/steps/{step}/approve`. {limit}")


async def _wait_for_answer(input_type: type[ApprovalInput], key: str, timeout_s: float | None,
                           on_deployment: bool) -> ApprovalInput:
    prefect_timeout = int(timeout_s + PREFECT_GRACE_S) if timeout_s else NO_TIMEOUT_S
    if on_deployment:  # the process exits here; the flow re-executes from the top once answered
        return await asuspend_flow_run(wait_for_input=input_type, timeout=prefect_timeout, key=key)
    return await apause_flow_run(wait_for_input=input_type, timeout=prefect_timeout,
                                 poll_interval=POLL_INTERVAL_S, key=key)  # type: ignore[arg-type]


async def _answer_in_flight(input_type: type[ApprovalInput], flow_run_id: str, key: str,
                            on_deployment: bool) -> ApprovalInput:
    """The answer sent just as the step timed out: wait for Prefect to leave Paused, then read it."""
    keyset = keyset_from_base_key(f"{'suspended' if on_deployment else 'paused'}-{key}")
    async with get_client() as client:
        while True:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
            if flow_run.state is None or flow_run.state.type != StateType.PAUSED:
                return await input_type.aload(keyset, flow_run_id=UUID(flow_run_id))
            await asyncio.sleep(POLL_INTERVAL_S)


async def await_approval(run_id: str, step: str, subject: MediaRef | None, subject_url: str | None, *,
                         timeout_s: float | None, on_timeout: Literal["cancel", "approve"]) -> ApprovalAnswer:
    """Ask a person about ``subject`` and return their answer; call it from the flow body (Prefect pauses flow
    runs, not tasks). Marks the step and run ``waiting``, publishes the question as an artifact and an event, pauses
    (in-process) or suspends (a deployment run: the flow re-executes from the top when answered and this returns
    the recorded answer). After it the run is ``running`` again for approve/redo, ``cancelled`` for reject or
    timeout; the caller ends the flow run Cancelled then and starts nothing that depends on the approval."""
    context = FlowRunContext.get()
    if context is None or context.flow_run is None or TaskRunContext.get() is not None:
        raise RuntimeError("await_approval is called from a flow's body: Prefect pauses flow runs, not tasks")
    if timeout_s is not None and timeout_s <= 0:
        raise SpecError("timeout", f"must be more than 0 seconds, got {timeout_s:g}")
    flow_run_id = str(context.flow_run.id)
    link = _subject_link(subject, subject_url)
    markdown = _question(run_id, step, link, timeout_s, on_timeout)
    question = {"subject_url": link, "timeout_s": timeout_s, "on_timeout": on_timeout}
    repo.mark_run(run_id, WAITING, prefect_flow_run_id=flow_run_id)  # first: a waiting step has a waiting run
    step_id, round_no, new, pending = _open_round(run_id, step, flow_run_id, question)
    if pending is not None:  # answered while no process ran the run; this one was started to go on with it
        return _received(run_id, step, step_id, round_no, ApprovalInput(**pending))
    key = _pause_key(step, round_no)
    if new:
        events.emit(run_id, "approval", f"{step}: waiting for a person to judge {link or 'the output'}", step=step,
                    data={"question": True, "round": round_no, **question})
        await acreate_markdown_artifact(markdown=markdown, key=_artifact_key(run_id, step),
                                        description=f"What approval '{step}' of run {run_id} asks about")
    input_type = ApprovalInput.with_initial_data(description=markdown)
    on_deployment = context.flow_run.deployment_id is not None
    try:
        async with asyncio.timeout(timeout_s):
            given = await _wait_for_answer(input_type, key, timeout_s, on_deployment)
    except asyncio.CancelledError:
        _close_round(step_id, "cancelled", None, "the run was cancelled while waiting for an answer")
        raise
    except TimeoutError:
        if _claim(step_id, "timed-out"):
            return await _timed_out(run_id, step, step_id, flow_run_id, timeout_s or 0, on_timeout)
        given = await _answer_in_flight(input_type, flow_run_id, key, on_deployment)
    return _received(run_id, step, step_id, round_no, given)


def _received(run_id: str, step: str, step_id: int, round_no: int, given: ApprovalInput) -> ApprovalAnswer:
    sent = _answer_event(run_id, step, round_no)
    redo = given.decision == "redo"
    answer = ApprovalAnswer(decision=given.decision, prompt=given.prompt if redo else None,
                            seed=given.seed if redo else None, note=given.note,
                            via=sent["via"] if sent else "prefect-ui")
    said = _said(answer)
    if answer.decision == "approve":
        _close_round(step_id, "completed", answer, None)
    else:
        _close_round(step_id, "cancelled", answer, said)
    events.emit(run_id, "approval", f"{step}: {said}", step=step,
                data={"answer": True, "received": True, "round": round_no, "decision": answer.decision,
                      "via": answer.via, "prompt": answer.prompt, "seed": answer.seed, "note": answer.note})
    if answer.decision == "reject":
        repo.mark_run(run_id, "cancelled", error=f"rejected at approval '{step}' ({said})")
    else:
        repo.mark_run(run_id, "running")
    return answer


def _said(answer: ApprovalAnswer) -> str:
    verb = {"approve": "approved", "reject": "rejected", "redo": "redo asked", "timeout": "no answer in time"}
    parts = [f"{verb[answer.decision]} via {answer.via}"]
    if answer.prompt is not None:
        parts.append(f"new prompt {answer.prompt!r}")
    if answer.seed is not None:
        parts.append(f"new seed {answer.seed}")
    if answer.note:
        parts.append(f"note: {answer.note}")
    return "; ".join(parts)


async def _timed_out(run_id: str, step: str, step_id: int, flow_run_id: str, timeout_s: float,
                     on_timeout: str) -> ApprovalAnswer:
    note = f"no answer within {timeout_s:g} s (on_timeout: {on_timeout})"
    if on_timeout == "approve":
        answer = ApprovalAnswer(decision="approve", note=note, via="timeout")
        await aresume_flow_run(UUID(flow_run_id), run_input={"decision": "approve", "note": note})
        _close_round(step_id, "completed", answer, None)
        repo.mark_run(run_id, "running")
    else:
        answer = ApprovalAnswer(decision="timeout", note=note, via="timeout")
        _close_round(step_id, "cancelled", answer, note)
        repo.mark_run(run_id, "cancelled", error=f"approval '{step}': {note}")
    events.emit(run_id, "approval", f"{step}: {note}", step=step,
                data={"answer": True, "received": True, "decision": answer.decision, "via": "timeout"})
    return answer


# --- from any process ---------------------------------------------------------------------------------------------

def _checked_input(decision: str, prompt: str | None, seed: int | None, note: str | None) -> dict[str, Any]:
    if decision not in DECISIONS:
        raise SpecError("decision", f"'{decision}' is not a decision; allowed: {', '.join(DECISIONS)}")
    if decision != "redo":
        for name, value in (("prompt", prompt), ("seed", seed)):
            if value is not None:
                raise SpecError(name, f"only a redo takes a new {name}; leave it out to {decision}")
    try:
        checked = ApprovalInput(decision=decision, prompt=prompt, seed=seed, note=note)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecError(".".join(str(p) for p in first["loc"]) or "input", first["msg"]) from None
    return checked.model_dump(mode="json", exclude_none=True)


def _waiting_round(run_id: str, step: str) -> tuple[int, int, str]:
    """(row id, round, flow run id) of the step's waiting round; the right error otherwise."""
    run = repo.get_run(run_id)
    with session_scope(readonly=True) as s:
        row = _latest_row(s, run_id, step)
        if row is None:
            names = list(dict.fromkeys(st.name for st in run.steps))
            planned = [d.get("id") for d in (run.spec.get("steps") or []) if isinstance(d, dict)]
            if step in planned:
                raise NotWaitingError(run_id, step, f"the run has not reached it (the run is {run.status})")
            raise StepNotFoundError(run_id, step, names)
        if row.backend != BACKEND:
            raise NotWaitingError(run_id, step, "it is not an approval step")
        detail = row.detail or {}
        if row.status == ANSWERED:
            raise NotWaitingError(run_id, step, "it has been answered already; a second answer is refused")
        if row.status != WAITING:
            how = f" ({detail['decision']} via {detail.get('via')})" if detail.get("decision") else ""
            raise NotWaitingError(run_id, step, f"it is {row.status}{how}")
        return row.id, int(detail.get("round", 1)), str(detail.get("flow_run_id") or run.prefect_flow_run_id)


def answer_approval(run_id: str, step: str, decision: str, *, prompt: str | None = None, seed: int | None = None,
                    note: str | None = None, via: Via = "python") -> None:
    """Answer the waiting approval ``step`` of ``run_id`` from any process, through Prefect's resume with input
    (as the Prefect UI does). Raises ``SpecError`` (bad decision/prompt/seed), ``RunNotFoundError``,
    ``StepNotFoundError``, or ``NotWaitingError`` (not waiting: not reached, answered already, finished)."""
    payload = _checked_input(decision, prompt, seed, note)
    step_id, round_no, flow_run_id = _waiting_round(run_id, step)
    if not _claim(step_id, ANSWERED):
        raise NotWaitingError(run_id, step, "it has been answered already; a second answer is refused")
    events.emit(run_id, "approval", f"{step}: {decision} sent via {via}", step=step,
                data={"answer": True, "round": round_no, "decision": decision, "via": via, "prompt": prompt,
                      "seed": seed, "note": note})
    try:
        _resume(run_id, step, flow_run_id, payload)
    except _OwnerGone as gone:
        if "steps" not in repo.get_run(run_id).spec:  # not a pipeline run: nothing would find the answer again
            _claim(step_id, WAITING, allowed=(ANSWERED,))
            raise NotWaitingError(run_id, step, f"the process that ran it ({gone.owner}) is gone, so nothing "
                                  "would continue it") from None
        _continue_elsewhere(run_id, step, step_id, payload, gone.owner)
    except BaseException:
        _claim(step_id, WAITING, allowed=(ANSWERED,))
        raise


class _OwnerGone(Exception):
    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


def _continue_elsewhere(run_id: str, step: str, step_id: int, payload: dict[str, Any], dead_owner: str) -> None:
    """The process that paused the run is gone: record the answer on the round and resume the run in a detached
    process, whose flow finds completed steps in the store and takes this answer instead of asking again."""
    from reelflow.runs import detached

    with session_scope() as s:
        row = s.get(Step, step_id)
        assert row is not None
        row.detail = {**(row.detail or {}), PENDING_ANSWER: payload}
    try:
        detached.start(run_id, from_owner=dead_owner, resume=True)
    except BaseException:
        with session_scope() as s:
            row = s.get(Step, step_id)
            assert row is not None
            row.detail = {k: v for k, v in (row.detail or {}).items() if k != PENDING_ANSWER}
        raise
    events.emit(run_id, "approval", f"{step}: the process that paused the run ({dead_owner}) is gone; resumed in "
                f"another process with this answer", step=step)


def _owner_gone(run_id: str) -> str | None:
    """The owner of the run when that process is gone (an in-process pause cannot be answered then)."""
    with session_scope(readonly=True) as s:
        found = s.execute(select(Run.owner, RunOwner.heartbeat_at).outerjoin(RunOwner, RunOwner.id == Run.owner)
                          .where(Run.id == run_id)).first()
    if found is None or owners.alive(found[0], found[1]):
        return None
    return found[0] or "unknown"


def _resume(run_id: str, step: str, flow_run_id: str, payload: dict[str, Any]) -> None:
    ensure_api()
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + PAUSING_S
        while True:  # the step is marked waiting just before the flow run proposes Paused
            state = client.read_flow_run(UUID(flow_run_id)).state
            if state is None or state.type != StateType.RUNNING or time.monotonic() > deadline:
                break
            time.sleep(POLL_INTERVAL_S / 5)
        if state is None or state.type != StateType.PAUSED:
            shown = state.name if state is not None else "unknown"
            raise NotWaitingError(run_id, step, f"its Prefect flow run {flow_run_id} is {shown}, not paused")
        if not state.state_details.pause_reschedule and (gone := _owner_gone(run_id)):
            raise _OwnerGone(gone)
        response = client.resume_flow_run(UUID(flow_run_id), run_input=payload)
    if response.status != SetStateStatus.ACCEPT:
        reason = getattr(response.details, "reason", None) or response.status.value
        raise NotWaitingError(run_id, step, f"Prefect refused the answer: {reason}")


# --- no process waits on a suspended run: its timeout is checked here ---------------------------------------------

def _overdue() -> list[tuple[str, str, int, str, float, str]]:
    """Waiting approval rounds whose timeout has passed: (run id, step, row id, flow run id, timeout, on_timeout)."""
    now = utcnow()
    with session_scope(readonly=True) as s:
        rows = s.scalars(select(Step).where(Step.kind == "approve", Step.status == WAITING)).all()
        found = []
        for row in rows:
            detail = row.detail or {}
            timeout_s, flow_run_id = detail.get("timeout_s"), detail.get("flow_run_id")
            started = row.started_at
            if not timeout_s or not flow_run_id or started is None:
                continue
            if started.tzinfo is None:
                started = started.replace(tzinfo=now.tzinfo)
            if (now - started).total_seconds() >= float(timeout_s):
                found.append((row.run_id, row.name, row.id, str(flow_run_id), float(timeout_s),
                              str(detail.get("on_timeout") or "cancel")))
    return found


async def expire_suspended() -> list[str]:
    """End the approvals of suspended deployment runs whose timeout has passed as their step says (``on_timeout``:
    approve resumes the run with an approval, cancel ends it cancelled), long before Prefect's own pause expiry
    would fail the flow run. No process waits on a suspended run, so ``reconcile`` (in every worker and ``reelflow
    serve``) calls this; an in-process pause keeps its own timer. Returns the runs it ended or resumed."""
    from reelflow.runs.dispatch import cancel_flow_run

    done = []
    for run_id, step, step_id, flow_run_id, timeout_s, on_timeout in _overdue():
        async with get_client() as client:
            flow_run = await client.read_flow_run(UUID(flow_run_id))
        state = flow_run.state
        if state is None or state.type != StateType.PAUSED or not state.state_details.pause_reschedule:
            continue  # an in-process pause (its own timer), or not paused yet
        note = f"no answer within {timeout_s:g} s (on_timeout: {on_timeout})"
        if on_timeout == "approve":
            try:
                await asyncio.to_thread(answer_approval, run_id, step, "approve", note=note, via="timeout")
            except NotWaitingError:
                continue  # answered meanwhile
        else:
            if not _claim(step_id, "timed-out"):
                continue
            await cancel_flow_run(flow_run_id, force_cancelled=True)  # first: Prefect agrees once the store says
            answer = ApprovalAnswer(decision="timeout", note=note, via="timeout")
            _close_round(step_id, "cancelled", answer, note)
            repo.mark_run(run_id, "cancelled", error=f"approval '{step}': {note}")
            events.emit(run_id, "approval", f"{step}: {note}", step=step,
                        data={"answer": True, "received": True, "decision": "timeout", "via": "timeout"})
        done.append(run_id)
    return done
