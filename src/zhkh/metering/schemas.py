"""Request and response bodies of the metering API."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from zhkh.metering.models import MeterScope, Provenance, Service
from zhkh.metering.validation import well_formed_value


class _Values(BaseModel):
    """``value`` for single-rate meters or ``values`` per zone, each a possible reading value."""

    value: Decimal | None = Field(default=None, description="single-rate meters")
    values: dict[str, Decimal] | None = Field(default=None, description='multi-zone meters: {"t1": ..., "t2": ...}')

    @field_validator("value")
    @classmethod
    def _value(cls, value: Decimal | None) -> Decimal | None:
        return None if value is None else well_formed_value(value, "value")

    @field_validator("values")
    @classmethod
    def _zones(cls, values: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        if values is None:
            return None
        if not values or set(values) - {"t1", "t2", "t3"}:
            raise ValueError("values are keyed t1, t2, t3")
        return {key: well_formed_value(value, f"values.{key}") for key, value in values.items()}

    @model_validator(mode="after")
    def _one_of(self) -> _Values:
        if (self.value is None) == (self.values is None):
            raise ValueError("give value or values, exactly one")
        return self


class ReadingIn(BaseModel):
    """One reading of a batch. Only its shape is checked here; what a reading can be (value or
    values, zones keyed t1 to t3, a finite value of at most 12 integer digits, a time between
    1970 and 2099) is checked once, as the batch's readings are built (``api._expand``), and a
    bad one is refused with its position: a batch of 10,000 is not validated twice in Python."""

    serial: str = Field(min_length=1, max_length=64, description="the meter's serial number")
    taken_at: datetime | date = Field(description="when it was read: a date (local midnight) or a time with offset")
    value: Decimal | None = Field(default=None, description="single-rate meters")
    values: dict[str, Decimal] | None = Field(default=None, description='multi-zone meters: {"t1": ..., "t2": ...}')
    source: str | None = Field(default=None, max_length=40, description="where it came from; default api")


MAX_BATCH = 10_000


class ReadingBatchIn(BaseModel):
    readings: Annotated[list[ReadingIn], Field(min_length=1)]


class ZoneResult(BaseModel):
    zone: int
    status: str
    reason: str | None = None
    detail: str | None = None
    reading_id: int | None = None
    flags: list[str] = []


class ReadingResult(BaseModel):
    """Fields that would be empty are left out of the answer."""

    index: int
    status: str = Field(description="accepted, duplicate, rejected or quarantined (the worst of its zones)")
    reason: str | None = Field(default=None, description="why it was rejected or quarantined")
    detail: str | None = None
    reading_id: int | None = Field(default=None, description="the stored reading (single-zone readings)")
    flags: list[str] = Field(default=[], description="late, rollover, verification_expired")
    zones: list[ZoneResult] | None = Field(default=None, description="per zone, for multi-zone readings")


class ReadingBatchOut(BaseModel):
    summary: dict[str, int]
    results: list[ReadingResult]


class ResidentReadingIn(_Values):
    serial: str = Field(min_length=1, max_length=64)


class CorrectionIn(BaseModel):
    value: Decimal
    reason: str = Field(min_length=3, max_length=500)

    @field_validator("value")
    @classmethod
    def _value(cls, value: Decimal) -> Decimal:
        return well_formed_value(value, "value")


class ReadingOut(BaseModel):
    id: int
    zone: int
    taken_at: datetime
    value: Decimal
    status: str
    reason: str | None
    detail: str | None
    flags: str | None
    source: str
    source_ref: str | None
    corrects_id: int | None
    superseded_by_id: int | None


class LastReading(BaseModel):
    zone: int
    taken_at: datetime
    value: Decimal


class MeterOut(BaseModel):
    serial: str
    service: Service
    scope: MeterScope
    building_id: str
    account: str | None
    zones: int
    digits: int
    installed_on: date
    verified_until: date | None
    archived_on: date | None
    automatic: bool
    last_readings: list[LastReading] = []


class ConsumptionOut(BaseModel):
    period: str
    zone: int
    provenance: Provenance
    start_value: Decimal | None
    start_at: datetime | None
    end_value: Decimal | None
    end_at: datetime | None
    volume: Decimal | None


class AlarmOut(BaseModel):
    id: int
    kind: str
    subject: str
    state: str
    details: dict[str, object]
    occurrences: int
    raised_at: datetime
    last_seen_at: datetime
