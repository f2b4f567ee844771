from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.housing.models  # noqa: F401  (its tables are referenced by foreign keys here)
from zhkh.core.db import Base
from zhkh.core.models import BigId, string_enum
from zhkh.core.types import UtcDateTime


class AlarmKind(StrEnum):
    LEAK = "leak"  # an automatic meter's flow never drops to zero over the leak window
    SPIKE = "spike"  # consumption far above the meter's own history
    NO_DATA = "no_data"  # an automatic meter went silent
    TAMPER = "tamper"  # reported by the device
    MAGNET = "magnet"  # reported by the device
    LOW_BATTERY = "low_battery"  # reported by the device
    VERIFICATION_EXPIRING = "verification_expiring"
    READING_MISSING = "reading_missing"  # the reading window is closing and no reading came


class AlarmState(StrEnum):
    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class Alarm(Base):
    """One occurrence of a condition on a subject ("meter:CW-1", "device:chirpstack:70b3...").
    While it is open (active or acknowledged), repeats update it; a cleared alarm stays as
    history and the next occurrence is a new alarm."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index(
            "uq_alarms_open",
            "kind",
            "subject",
            unique=True,
            postgresql_where=text("state <> 'cleared'"),
            sqlite_where=text("state <> 'cleared'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[AlarmKind] = mapped_column(string_enum(AlarmKind, "alarm_kind"))
    subject: Mapped[str] = mapped_column(String(200))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    state: Mapped[AlarmState] = mapped_column(string_enum(AlarmState, "alarm_state"))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurrences: Mapped[int] = mapped_column(Integer, server_default="1")
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
