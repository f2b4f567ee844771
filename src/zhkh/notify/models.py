from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.housing.models  # noqa: F401  (its tables are referenced by foreign keys here)
from zhkh.core.db import Base
from zhkh.core.models import BigId, string_enum
from zhkh.core.types import UtcDateTime


class ContactKind(StrEnum):
    RESIDENT = "resident"  # hears about their own personal account
    OPERATOR = "operator"  # hears about a building's alarms (or every building's)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[ContactKind] = mapped_column(string_enum(ContactKind, "contact_kind"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(2), server_default="ru")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())


class NotificationPreference(Base):
    """The channels a contact wants for one alarm kind; no row means the defaults."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("contact_id", "alarm_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    alarm_kind: Mapped[str] = mapped_column(String(40))
    channels: Mapped[list[str]] = mapped_column(JSON)


class Delivery(Base):
    """One message to one contact over one channel. ``dedupe_key`` makes planning idempotent: the
    same alarm delivered twice from the outbox plans each message once."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[Channel] = mapped_column(string_enum(Channel, "delivery_channel"))
    address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[DeliveryStatus] = mapped_column(string_enum(DeliveryStatus, "delivery_status"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())


class InAppNotification(Base):
    __tablename__ = "in_app_notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
