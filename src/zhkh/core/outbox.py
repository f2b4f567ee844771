"""The transactional outbox.

A fact that other modules must react to (a bill issued, a payment allocated, a money fact for
the ledger) is written here in the same transaction as the fact itself: a rollback drops both,
a crash loses neither. ``zhkh worker`` delivers the rows; consumers must be idempotent because
a row can be delivered again after a crash between delivery and marking it done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from zhkh.core.clock import utc_now
from zhkh.core.db import Base
from zhkh.core.models import BigId
from zhkh.core.types import UtcDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    available_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)


def emit(session: Session, topic: str, payload: dict[str, Any]) -> OutboxMessage:
    """Record ``payload`` for delivery under ``topic``; it becomes visible on commit."""
    message = OutboxMessage(topic=topic, payload=payload)
    session.add(message)
    return message
