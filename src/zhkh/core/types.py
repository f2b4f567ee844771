"""Column types that keep values exact on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from zhkh.core.values import canonical_decimal, decimal_to_text


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
        return canonical_decimal(value if isinstance(value, Decimal) else Decimal(str(value)))


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, always handed back as an aware UTC datetime on both databases.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones and would return naive values,
    which cannot be compared with aware ones, so there the UTC wall time is stored and the zone
    is put back on reading. Naive datetimes are refused on the way in: their zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UtcDateTime takes a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a naive datetime has no zone, refusing to guess: {value.isoformat()}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
