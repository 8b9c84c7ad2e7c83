"""Whether an interruption is a cancel: the task cancelled, or the SIGTERM a Prefect runner sends to a flow run's
process on Cancelling (told apart from a plain SIGTERM by the runner's recorded intent)."""

from __future__ import annotations

import asyncio

from prefect.exceptions import TerminationSignal


def cancel_intent() -> bool:
    """Whether a Prefect runner asked this process to cancel its flow run (Prefect's private control channel;
    False when this Prefect has none, and the SIGTERM path alone applies)."""
    try:
        from prefect._internal.control_listener import get_intent
    except ImportError:
        return False
    return get_intent() == "cancel"


def run_cancelled(exc: BaseException) -> bool:
    """Task cancellation, or the SIGTERM a Prefect runner sends to cancel the flow run when it lands inside a task.
    Any other interruption (a crash, a plain SIGTERM) leaves the job running for ``reelflow resume``."""
    if isinstance(exc, asyncio.CancelledError):
        return True
    return isinstance(exc, TerminationSignal) and cancel_intent()
