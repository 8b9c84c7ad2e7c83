"""The background Prefect server on SQLite: Prefect's own ``prefect`` CLI, with its write transactions begun IMMEDIATE.

    python -m reelflow.orchestration.prefect_sqlite server start --host 127.0.0.1 --port 4200

Prefect begins a transaction ``DEFERRED`` unless the caller asks ``with_for_update``. Under WAL, a deferred
transaction that has read and then writes after another connection committed gets ``SQLITE_BUSY`` at once: SQLite
does not call the busy handler there, because waiting could not help that snapshot. Prefect answers 503 "database is
locked", and its client backs off 2, 4, 8, 16 and 32 s (PrefectHQ/prefect#18934): the batch stalls that
``benchmarks/fal_throughput.py`` counts. Begun IMMEDIATE, a transaction takes the write lock at ``BEGIN``, where
Prefect's own ``busy_timeout`` (60 s) applies, so writers wait their turn instead of failing. Reads outside a
transaction (most GETs) are untouched.

Changing Prefect's behaviour here means replacing a private method, so it is guarded: if
``AioSqliteConfiguration.begin_transaction`` or ``SQLITE_BEGIN_MODE`` are not what this was written against, the
server runs unpatched (as plain ``prefect server start``) and says so in its log. ``REELFLOW_PREFECT_SQLITE_BEGIN=
deferred`` keeps Prefect's default on purpose (to compare the two in ``benchmarks/fal_throughput.py``).
"""

from __future__ import annotations

import contextvars
import inspect
import os
import sys
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import Any

PATCH_MARK = "_reelflow_begin_immediate"


def begin_immediate() -> str | None:
    """Make every Prefect SQLite transaction ``BEGIN IMMEDIATE``; the reason it could not, or None when it did."""
    try:
        from prefect.server.database import configurations
    except ImportError as error:
        return f"prefect.server.database.configurations did not import ({error})"
    config_class = getattr(configurations, "AioSqliteConfiguration", None)
    begin_mode = getattr(configurations, "SQLITE_BEGIN_MODE", None)
    original: Callable[..., Any] | None = getattr(config_class, "begin_transaction", None)
    if config_class is None or original is None or not isinstance(begin_mode, contextvars.ContextVar):
        return "AioSqliteConfiguration.begin_transaction or SQLITE_BEGIN_MODE is gone"
    if getattr(original, PATCH_MARK, False):
        return None
    try:
        parameters = list(inspect.signature(original).parameters)
        source = inspect.getsource(original)
    except (OSError, TypeError, ValueError) as error:
        return f"begin_transaction could not be inspected ({error})"
    if parameters != ["self", "session", "with_for_update"] or "SQLITE_BEGIN_MODE" not in source:
        return f"begin_transaction{inspect.signature(original)} is not the one this patch was written for"

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        token = begin_mode.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            begin_mode.reset(token)

    setattr(begin_transaction, PATCH_MARK, True)
    config_class.begin_transaction = begin_transaction
    return None


def main() -> int:
    keep_default = os.environ.get("REELFLOW_PREFECT_SQLITE_BEGIN", "").lower() == "deferred"
    refused = "REELFLOW_PREFECT_SQLITE_BEGIN=deferred" if keep_default else begin_immediate()
    said = (f"SQLite transactions stay DEFERRED (Prefect's default): {refused}" if refused
            else "SQLite write transactions begin IMMEDIATE")
    print(f"reelflow: {said}", file=sys.stderr, flush=True)
    from prefect.cli import app

    sys.argv[0] = "prefect"
    result = app()
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
