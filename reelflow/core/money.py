"""Money in US dollars, exact: ``Decimal`` in code, integer micro-dollars in the store, a JSON number (its exact
decimal text, at most six places) at the edges. An unknown cost is ``None``, never zero."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import PlainSerializer

MICRO = Decimal("0.000001")
MICROS_PER_USD = 1_000_000


def usd(value: Decimal | float | int | str | None) -> Decimal | None:
    """``value`` as dollars to the micro-dollar; a float is read as the decimal text it prints as."""
    if value is None:
        return None
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    return amount.quantize(MICRO, rounding=ROUND_HALF_EVEN)


def to_micros(value: Decimal | float | int | str) -> int:
    amount = usd(value)
    assert amount is not None
    return int(amount.scaleb(6))


def from_micros(micros: int) -> Decimal:
    return Decimal(micros).scaleb(-6).quantize(MICRO)


def total_usd(costs: Iterable[Decimal | None]) -> Decimal | None:
    """The sum, or ``None`` when any part is unknown (an unknown part makes the whole unknown)."""
    total = Decimal(0)
    for cost in costs:
        if cost is None:
            return None
        total += cost
    return usd(total)


def usd_json(value: Decimal) -> float | int:
    """A JSON number whose text is the amount's exact decimal text (``0.25``, ``1.4``, ``0``)."""
    normal = value.normalize()
    return int(normal) if normal == normal.to_integral_value() else float(normal)


def usd_number(value: Decimal | None) -> float | int | None:
    """``usd_json`` for a cost that may be unknown (``None``)."""
    return None if value is None else usd_json(value)


Usd = Annotated[Decimal, PlainSerializer(usd_json, return_type=float, when_used="json")]
"""A pydantic field type for money: ``Decimal`` in Python, a number in JSON."""


def usd_text(cost_usd: Decimal | float | None) -> str:
    """A cost as people read it: ``$0.1234``, or ``unknown`` when it is not known (unknown is not free)."""
    return "unknown" if cost_usd is None else f"${usd(cost_usd):.4f}"
