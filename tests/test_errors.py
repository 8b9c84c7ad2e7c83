"""The exception tree in ``reelflow.errors``: drawn in full in its docstring, one way to say "transient"."""

from __future__ import annotations

import inspect
import re
import socket

import pytest

from reelflow import errors
from reelflow.errors import (
    ComfyUnreachableError,
    ProviderError,
    SourceError,
    TransientProviderError,
    TransientSourceError,
)
from reelflow.providers.comfyui import ComfyClient

CLASSES = {name: cls for name, cls in vars(errors).items()
           if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == errors.__name__}


def drawn_tree() -> dict[str, str | None]:
    """Each class named in the docstring's tree, with the class drawn as its parent (None for a root)."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for indent, name in re.findall(r"^( *)[*x+\-] (\w+)", errors.__doc__ or "", re.MULTILINE):
        while stack and stack[-1][0] >= len(indent):
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((len(indent), name))
    return parents


def test_the_docstring_draws_every_class_under_its_base() -> None:
    tree = drawn_tree()
    assert set(tree) == set(CLASSES)
    for name, parent in tree.items():
        if parent is not None:
            assert issubclass(CLASSES[name], CLASSES[parent]), (name, parent)


def test_every_class_is_named_as_an_error() -> None:
    assert [name for name in CLASSES if not name.endswith("Error")] == []


def test_transient_is_a_kind_of_provider_failure() -> None:
    assert issubclass(TransientProviderError, ProviderError)
    assert issubclass(TransientSourceError, SourceError) and issubclass(TransientSourceError, TransientProviderError)


async def test_an_unreachable_comfyui_is_reported_once_not_rewrapped() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with ComfyClient(url) as client:
        with pytest.raises(ComfyUnreachableError) as caught:
            await client.health()
    assert str(caught.value).count("is unreachable") == 1 and caught.value.url == url
