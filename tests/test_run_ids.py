"""Run ids as people paste them: the full id or any unique prefix of at least six characters."""

from __future__ import annotations

import uuid

import pytest

from reelflow.errors import AmbiguousRunIdError, RunNotFoundError
from reelflow.store import repo


def _record(run_id: str) -> str:
    repo.create_run(run_id=run_id, idempotency_key=uuid.uuid4().hex, spec={}, model_id="local-motion",
                    backend="local")
    return run_id


def test_a_unique_prefix_names_the_run_and_the_full_id_still_does() -> None:
    run_id = _record(uuid.uuid4().hex)
    assert repo.resolve_run_id(run_id[:6]) == run_id
    assert repo.resolve_run_id(run_id[:12]) == run_id
    assert repo.resolve_run_id(run_id) == run_id


def test_a_shared_prefix_lists_every_match_and_a_short_or_unknown_one_is_not_found() -> None:
    stem = uuid.uuid4().hex[:8]
    first, second = _record(stem + "a" * 24), _record(stem + "b" * 24)
    with pytest.raises(AmbiguousRunIdError) as ambiguous:
        repo.resolve_run_id(stem)
    assert set(ambiguous.value.matches) == {first, second}
    assert first in str(ambiguous.value) and second in str(ambiguous.value)
    with pytest.raises(RunNotFoundError):
        repo.resolve_run_id(stem[:5])
    with pytest.raises(RunNotFoundError):
        repo.resolve_run_id("%" + stem)
    with pytest.raises(RunNotFoundError):
        repo.resolve_run_id("ffffffffffff" + stem)
