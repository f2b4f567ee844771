"""Column types that keep values exact on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from zhkh.core.values import decimal_to_text


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` stored as ``NUMERIC`` on PostgreSQL and as canonical text on SQLite.

    SQLite has no exact decimal type (its NUMERIC affinity turns 0.1 into a float), so there the
    value is kept as the text above. Arithmetic on these columns belongs in Python or on
    PostgreSQL; on SQLite only equality comparisons are meaningful in SQL.
    """

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            if isinstance(value, float):
                raise TypeError("ExactDecimal refuses float; build the Decimal from a string")
            value = Decimal(value)
        if dialect.name == "sqlite":
            return decimal_to_text(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # Canonical on the way out too, so both databases hand back the same text ("540", not
        # "540.0" on one and "540" on the other).
        return Decimal(decimal_to_text(value if isinstance(value, Decimal) else Decimal(str(value))))
