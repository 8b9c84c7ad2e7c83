"""``--help`` without a value placeholder on flags: Typer's rich help labels every option with its type,
so ``--json <bool>`` reads as if it took a value. A flag takes none, so it gets no label."""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_display_type_rich = TyperOption.display_type_rich


def _flag_without_type(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag and self.metavar is None else _display_type_rich(self, ctx)


def flags_without_placeholders() -> None:
    TyperOption.display_type_rich = _flag_without_type  # type: ignore[method-assign]
