"""Tables of metering.

Readings are kept forever with their provenance. A reading's value and time never change; an
operator's correction is a new row (``corrects_id``) and the original gets ``superseded_by_id``,
the one column ever set after insert, so queries can skip superseded readings cheaply.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

import zhkh.housing.models  # noqa: F401  (its tables are referenced by foreign keys here)
from zhkh.core.db import Base
from zhkh.core.models import BigId, Timestamps, string_enum
from zhkh.core.types import ExactDecimal, UtcDateTime


class Service(StrEnum):
    """Metered services (DOMAIN.md codes)."""

    COLD_WATER = "cold_water"
    HOT_WATER = "hot_water"
    ELECTRICITY = "electricity"
    HEATING = "heating"
    GAS = "gas"


class MeterScope(StrEnum):
    INDIVIDUAL = "individual"  # ИПУ, of a personal account
    BUILDING = "building"  # ОДПУ


class ReadingStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Provenance(StrEnum):
    """How a period's consumption was obtained (billing chooses average or norm from it)."""

    READING = "reading"
    INTERPOLATED = "interpolated"
    MISSING = "missing"


class Meter(Timestamps, Base):
    __tablename__ = "meters"
    __table_args__ = (
        CheckConstraint("zones BETWEEN 1 AND 3", name="zones_1_to_3"),
        CheckConstraint("digits BETWEEN 1 AND 12", name="digits_in_range"),
        CheckConstraint("(scope = 'individual') = (account_id IS NOT NULL)", name="account_iff_individual"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    service: Mapped[Service] = mapped_column(string_enum(Service, "meter_service"))
    scope: Mapped[MeterScope] = mapped_column(string_enum(MeterScope, "meter_scope"))
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    zones: Mapped[int] = mapped_column(SmallInteger)
    # Digits before the decimal point: a 5-digit counter rolls over from 99999.999 to 0.
    digits: Mapped[int] = mapped_column(SmallInteger)
    diameter_mm: Mapped[int | None] = mapped_column(SmallInteger)
    installed_on: Mapped[date] = mapped_column(Date)
    verified_until: Mapped[date | None] = mapped_column(Date)
    seal: Mapped[str | None] = mapped_column(String(64))
    archived_on: Mapped[date | None] = mapped_column(Date)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    # Read by a device (interpolated at period boundaries) rather than by people.
    automatic: Mapped[bool] = mapped_column(Boolean, server_default="0")


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        # The same reading twice is stored once. Corrections are exempt: accepting a rejected
        # reading as it was is a correction with the same meter, time and value.
        Index(
            "uq_readings_original",
            "meter_id",
            "zone",
            "taken_at",
            "value",
            unique=True,
            postgresql_where=text("corrects_id IS NULL"),
            sqlite_where=text("corrects_id IS NULL"),
        ),
        # The readings that count: every "reading just before / after" lookup runs on this.
        Index(
            "ix_readings_live",
            "meter_id",
            "zone",
            "taken_at",
            postgresql_where=text("status = 'accepted' AND superseded_by_id IS NULL"),
            sqlite_where=text("status = 'accepted' AND superseded_by_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    zone: Mapped[int] = mapped_column(SmallInteger)
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    status: Mapped[ReadingStatus] = mapped_column(string_enum(ReadingStatus, "reading_status"))
    reason: Mapped[str | None] = mapped_column(String(40))  # why rejected, a stable code
    detail: Mapped[str | None] = mapped_column(Text)  # the human explanation of the decision
    flags: Mapped[str | None] = mapped_column(String(200))  # e.g. "late,verification_expired"
    source: Mapped[str] = mapped_column(String(40))
    source_ref: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))

    meter: Mapped[Meter] = relationship()


class QuarantinedReading(Base):
    """A reading that could not be tied to a live meter: unknown serial or device, an unbound
    device channel, or a meter archived before the reading. Kept until an operator binds it."""

    __tablename__ = "quarantined_readings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), index=True)
    serial: Mapped[str | None] = mapped_column(String(64))
    device_format: Mapped[str | None] = mapped_column(String(32))
    device_id: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str | None] = mapped_column(String(64))
    zone: Mapped[int] = mapped_column(SmallInteger)
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    source: Mapped[str] = mapped_column(String(40))
    source_ref: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    # Set when the reading went through the pipeline again (bound, replayed): to the stored
    # reading, accepted or rejected; a replay that turned out a duplicate has no row of its own.
    resolved_reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


# The same reading quarantined again (a redelivered message, a second bind that still finds no
# meter for it) is the same row: what identifies it, whichever of serial or device it names.
Index(
    "uq_quarantined_readings_key",
    func.coalesce(QuarantinedReading.serial, ""),
    func.coalesce(QuarantinedReading.device_format, ""),
    func.coalesce(QuarantinedReading.device_id, ""),
    func.coalesce(QuarantinedReading.channel, ""),
    QuarantinedReading.zone,
    QuarantinedReading.taken_at,
    QuarantinedReading.value,
    unique=True,
)


class DeadLetter(Base):
    """A message that could not be read at all (not JSON, unknown format, wrong types), kept
    with its raw bytes so it can be looked at and replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (UniqueConstraint("transport", "topic", "payload_sha256", name="uq_dead_letters_message"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transport: Mapped[str] = mapped_column(String(20))  # mqtt, http
    topic: Mapped[str] = mapped_column(String(500))  # MQTT topic or HTTP path
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    # A redelivered message (the broker sends again what was not acknowledged) is the same dead
    # letter seen once more: counted, not stored twice.
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    occurrences: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    reason: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    last_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DeviceModel(Base):
    """How to read one kind of device: its wire format and which payload field is which meter
    channel (``mapping``, see docs/iot.md), so a new model needs configuration, not code."""

    __tablename__ = "device_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(32))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)


class Device(Timestamps, Base):
    """An IoT module, LoRaWAN end device, wM-Bus meter radio or resident-owned counter. Its
    ``external_id`` is what its messages carry: a DevEUI, a waterius key, a wM-Bus id."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("format", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    format: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(100))
    model_id: Mapped[int] = mapped_column(ForeignKey("device_models.id"))
    name: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the token a device presents when it posts over HTTP (waterius' Waterius-Token).
    secret_hash: Mapped[str | None] = mapped_column(String(64))

    model: Mapped[DeviceModel] = relationship()


class DeviceBinding(Base):
    """Which meter (and zone) a device channel measured, and when. Moving or replacing a device
    ends one binding and starts another; readings are resolved by their time."""

    __tablename__ = "device_bindings"
    __table_args__ = (Index("ix_device_bindings_device_channel", "device_id", "channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    channel: Mapped[str] = mapped_column(String(64))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"), index=True)
    zone: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    bound_from: Mapped[datetime] = mapped_column(UtcDateTime)
    bound_to: Mapped[datetime | None] = mapped_column(UtcDateTime)


class FlowLimit(Base):
    """The most a meter can physically pass in an hour, per service and pipe diameter (a row with
    no diameter is the service's default). Used to reject impossible jumps."""

    __tablename__ = "flow_limits"
    __table_args__ = (UniqueConstraint("service", "diameter_mm"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service: Mapped[Service] = mapped_column(string_enum(Service, "flow_limit_service"))
    diameter_mm: Mapped[int | None] = mapped_column(SmallInteger)
    max_per_hour: Mapped[Decimal] = mapped_column(ExactDecimal)


class Consumption(Base):
    """A meter's consumption in one zone for one period, derived from readings; recomputed when
    readings arrive late or are corrected."""

    __tablename__ = "consumption"
    __table_args__ = (
        UniqueConstraint("meter_id", "zone", "period"),
        # (period, meter_id) rather than period alone: SQLite, without statistics, took the
        # period index to join a period's meters to their consumption and scanned every row of
        # the period per meter (a 10,000-account billing run spent 83 s there, not 0.1 s).
        Index("ix_consumption_period_meter", "period", "meter_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    zone: Mapped[int] = mapped_column(SmallInteger)
    period: Mapped[date] = mapped_column(Date)  # the first day of the month
    provenance: Mapped[Provenance] = mapped_column(string_enum(Provenance, "consumption_provenance"))
    start_value: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    start_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end_value: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    end_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    volume: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
