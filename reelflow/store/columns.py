"""Column types of the store beyond SQLAlchemy's own."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.types import TypeDecorator

from reelflow.core.money import from_micros, to_micros


class MicroUsd(TypeDecorator[Decimal]):
    """US dollars as an integer number of micro-dollars (exact on SQLite and PostgreSQL alike); ``Decimal`` in
    Python. A float given to it is read as the decimal text it prints as."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else from_micros(int(value))
