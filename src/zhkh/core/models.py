"""Column helpers shared by the models of every module."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from zhkh.core.types import UtcDateTime

# 64-bit keys on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-incrementing rowid.
BigId = BigInteger().with_variant(Integer, "sqlite")


class Timestamps:
    """``created_at`` and ``updated_at`` set by the database, so set-based writes stamp them too."""

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())


def string_enum(enum: type[StrEnum], name: str) -> Enum:
    """An enum stored as its values in a VARCHAR with a CHECK constraint: portable, and adding a
    value is a constraint change rather than a PostgreSQL type migration."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )
