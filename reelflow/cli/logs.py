"""What of Prefect's logging reaches the terminal: its log lines with ``-v``, tracebacks with ``--debug``.

Without them a command shows its own clear messages only; every Prefect log line still goes to the Prefect
API (the flow run's logs in the Prefect UI).
"""

from __future__ import annotations

import logging

QUEUE_WORKERS = ("EventsWorker", "APILogWorker")
"""Prefect's background senders; at exit they warn "Still processing items" while they flush."""


class Verbosity:
    verbose = False
    debug = False


def configure(*, verbose: bool = False, debug: bool = False) -> None:
    Verbosity.verbose = Verbosity.verbose or verbose or debug
    Verbosity.debug = Verbosity.debug or debug
    if not Verbosity.verbose:
        for name in QUEUE_WORKERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def quiet_prefect_console() -> None:
    """Keep Prefect's console handler (run links, state changes, tracebacks) off the terminal unless ``-v``."""
    if Verbosity.verbose:
        return
    from reelflow.orchestration.prefect_server import ensure_api

    ensure_api()  # Prefect settles on its server when it is imported: an ephemeral one if none is chosen yet
    from prefect.logging.configuration import PROCESS_LOGGING_CONFIG, setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    if not PROCESS_LOGGING_CONFIG:
        setup_logging()  # now, so the handlers filtered below are the ones Prefect keeps
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and _drop not in handler.filters:
                handler.addFilter(_drop)


def _drop(record: logging.LogRecord) -> bool:
    """A filter, not a level: Prefect sets its handlers' levels again each time a flow run starts."""
    return False
