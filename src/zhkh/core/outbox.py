"""The transactional outbox.

A fact that other modules must react to (a bill issued, a payment allocated, a money fact for
the ledger) is written here in the same transaction as the fact itself: a rollback drops both,
a crash loses neither. ``zhkh worker`` delivers the rows: each message is handled in the same
transaction that marks it delivered, so database effects happen exactly once; effects outside
the database (an e-mail) must be made idempotent by the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from zhkh.core.clock import utc_now
from zhkh.core.db import Base
from zhkh.core.models import BigId
from zhkh.core.types import UtcDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # Consumers look for the oldest undelivered messages; without this they would walk past
        # every delivered one first (600,000 of them after a billing run's first batches).
        Index(
            "ix_outbox_undelivered",
            "id",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )

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


Handler = Callable[[Session, dict[str, Any]], object]  # what a handler returns is ignored
# Waits before retrying a message whose handler failed.
RETRY_AFTER = (timedelta(seconds=10), timedelta(minutes=1), timedelta(minutes=10), timedelta(hours=1))


def deliver_pending(
    factory: Callable[[], Session], handlers: Mapping[str, Handler], *, limit: int = 100, now: datetime | None = None
) -> dict[str, int]:
    """Deliver up to ``limit`` due messages whose topic has a handler, oldest first. Each message
    is handled in its own transaction that also marks it delivered, so its effects happen once
    even if the worker dies between two messages. A failing handler does not block the others:
    its message is retried later with the error kept. Returns counts delivered / failed."""
    moment = now or utc_now()
    counts = {"delivered": 0, "failed": 0}
    with factory() as session, session.begin():
        due = list(
            session.scalars(
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.delivered_at.is_(None),
                    OutboxMessage.available_at <= moment,
                    OutboxMessage.topic.in_(list(handlers)),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
        )
    for message_id in due:
        try:
            with factory() as session, session.begin():
                message = session.scalar(
                    select(OutboxMessage)
                    .where(OutboxMessage.id == message_id, OutboxMessage.delivered_at.is_(None))
                    .with_for_update(skip_locked=True)
                )
                if message is None:
                    continue  # another worker has it
                handlers[message.topic](session, message.payload)
                message.delivered_at = utc_now()
                message.attempts += 1
            counts["delivered"] += 1
        except Exception as exc:  # any handler failure is recorded and retried
            _postpone(factory, message_id, exc, moment)
            counts["failed"] += 1
    return counts


def _postpone(factory: Callable[[], Session], message_id: int, error: Exception, now: datetime) -> None:
    with factory() as session, session.begin():
        message = session.get(OutboxMessage, message_id)
        if message is None:
            return
        message.attempts += 1
        message.last_error = f"{type(error).__name__}: {error}"[:4000]
        message.available_at = now + RETRY_AFTER[min(message.attempts, len(RETRY_AFTER)) - 1]
