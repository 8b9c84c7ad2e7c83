"""Where records live: SQLAlchemy models, sessions, queries and views."""

from reelflow.store import owners  # noqa: F401  (its mapper events stamp every queued or running run with its owner)
