"""Tables of the tariff catalogue: who supplies what to each building, prices, norms,
multipliers and benefits, each with its validity.

A value is in force on a day when its ``valid_from`` is on or before that day and its
``valid_to`` (the last day, inclusive; empty: open-ended) is not before it. When several are, the
one with the latest ``valid_from`` wins, and a building's own value beats one for all buildings:
a new tariff from July is simply a new row, and the old row's history stays as it was.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.housing.models  # noqa: F401  (its tables are referenced by foreign keys here)
from zhkh.core.db import Base
from zhkh.core.models import BigId, Timestamps, string_enum
from zhkh.core.types import ExactDecimal
from zhkh.tariffs.catalogue import ServiceCode


class BenefitLimit(StrEnum):
    SOCIAL_NORM = "social_norm"  # area-based services, up to the social norm of area
    CONSUMPTION_NORM = "consumption_norm"  # resources, up to the consumption norm


# Checks on decimal columns CAST them: SQLite stores them as text (ExactDecimal), and text
# compared with a number is always the greater there.


def _validity_checked() -> CheckConstraint:
    return CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_to_after_from")


class ServiceSupplier(Timestamps, Base):
    """The organisation a building's residents owe for a service (the manager itself for
    maintenance). A service with no supplier is not billed in that building."""

    __tablename__ = "service_suppliers"
    __table_args__ = (
        _validity_checked(),
        Index("uq_service_suppliers_key", "building_id", "service", "valid_from", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    service: Mapped[ServiceCode] = mapped_column(string_enum(ServiceCode, "supplied_service"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Tariff(Timestamps, Base):
    """A price per unit. ``zone`` 0 is a single-rate price (any zone); 1-3 are the zones of a
    multi-rate electricity tariff. No ``building_id``: the price of every building."""

    __tablename__ = "tariffs"
    __table_args__ = (
        _validity_checked(),
        CheckConstraint("zone BETWEEN 0 AND 3", name="zone_0_to_3"),
        CheckConstraint("CAST(price AS NUMERIC) >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service: Mapped[ServiceCode] = mapped_column(string_enum(ServiceCode, "tariff_service"))
    zone: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    price: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))


Index(
    "uq_tariffs_key",
    Tariff.service,
    Tariff.zone,
    func.coalesce(Tariff.building_id, 0),
    Tariff.valid_from,
    unique=True,
)


class Norm(Timestamps, Base):
    """A consumption norm (per person a month; heating per m²; КР на СОИ per m² of common
    area) or the social norm of area (``service`` "social_area", m² per person; ``residents``
    says for which household size, empty: any other)."""

    __tablename__ = "norms"
    __table_args__ = (_validity_checked(), CheckConstraint("CAST(value AS NUMERIC) >= 0", name="value_not_negative"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service: Mapped[str] = mapped_column(String(32))
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(16))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    residents: Mapped[int | None] = mapped_column(SmallInteger)


Index(
    "uq_norms_key",
    Norm.service,
    func.coalesce(Norm.building_id, 0),
    func.coalesce(Norm.residents, 0),
    Norm.valid_from,
    unique=True,
)


class Multiplier(Timestamps, Base):
    """The multiplier of a norm where a meter could be installed and is not (ПП 354 формула
    4(1)): 1.5, and 3 for cold water from 2025-12-06 (ПП №1871). None for wastewater and gas."""

    __tablename__ = "multipliers"
    __table_args__ = (
        _validity_checked(),
        CheckConstraint("CAST(value AS NUMERIC) >= 1", name="value_at_least_one"),
        Index("uq_multipliers_key", "service", "valid_from", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service: Mapped[ServiceCode] = mapped_column(string_enum(ServiceCode, "multiplier_service"))
    value: Mapped[Decimal] = mapped_column(ExactDecimal)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Benefit(Timestamps, Base):
    """A benefit granted by social protection to a personal account: ``percent`` of a service's
    charge, for ``persons`` of its residents (empty: all of them), limited by the social norm of
    area or by the consumption norm."""

    __tablename__ = "benefits"
    __table_args__ = (
        _validity_checked(),
        CheckConstraint("CAST(percent AS NUMERIC) > 0 AND CAST(percent AS NUMERIC) <= 100", name="percent_in_range"),
        CheckConstraint("persons IS NULL OR persons > 0", name="persons_positive"),
        Index("uq_benefits_key", "account_id", "service", "granted_by_id", "valid_from", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    service: Mapped[ServiceCode] = mapped_column(string_enum(ServiceCode, "benefit_service"))
    percent: Mapped[Decimal] = mapped_column(ExactDecimal)
    limit: Mapped[BenefitLimit] = mapped_column(string_enum(BenefitLimit, "benefit_limit"))
    persons: Mapped[int | None] = mapped_column(SmallInteger)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    granted_by_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
