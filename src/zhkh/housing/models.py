"""Tables of the housing registry.

Natural keys (what operators know things by) are unique and used by imports and the API:
an organisation's INN, a building's ``code`` (its ``building_id`` in files), a premises' number
within its building, a personal account's number. Surrogate ``id`` columns are internal.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from zhkh.core.db import Base
from zhkh.core.models import BigId, Timestamps, string_enum
from zhkh.core.types import ExactDecimal


class OrganisationRole(StrEnum):
    MANAGER = "manager"  # УК, ТСЖ, ЖСК
    SUPPLIER = "supplier"  # РСО
    SOCIAL_PROTECTION = "social_protection"  # ОСЗН


class PremiseKind(StrEnum):
    RESIDENTIAL = "residential"
    NON_RESIDENTIAL = "non_residential"


class Organisation(Timestamps, Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    inn: Mapped[str] = mapped_column(String(12), unique=True)
    kpp: Mapped[str | None] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(500))
    role: Mapped[OrganisationRole] = mapped_column(string_enum(OrganisationRole, "organisation_role"))
    bank_account: Mapped[str | None] = mapped_column(String(20))
    bic: Mapped[str | None] = mapped_column(String(9))
    bank_name: Mapped[str | None] = mapped_column(String(500))
    corr_account: Mapped[str | None] = mapped_column(String(20))
    # The days of the month on which a manager takes residents' readings (DOMAIN.md: e.g. 15-25);
    # a reading after the window's last day counts for the next period.
    reading_window_from: Mapped[int] = mapped_column(SmallInteger, server_default="15")
    reading_window_to: Mapped[int] = mapped_column(SmallInteger, server_default="25")


class Building(Timestamps, Base):
    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(500))
    # Total area of all premises (S_total of ПП 354) and of the common property, in m².
    total_area_m2: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    common_area_m2: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)

    manager: Mapped[Organisation | None] = relationship()


class Premise(Timestamps, Base):
    __tablename__ = "premises"
    __table_args__ = (UniqueConstraint("building_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    number: Mapped[str] = mapped_column(String(32))
    kind: Mapped[PremiseKind] = mapped_column(string_enum(PremiseKind, "premise_kind"))
    area_m2: Mapped[Decimal] = mapped_column(ExactDecimal)
    # Whether an individual meter can be installed (ПП 354: the multiplier applies only if so).
    meter_possible: Mapped[bool] = mapped_column(Boolean)

    building: Mapped[Building] = relationship()


class Account(Timestamps, Base):
    """A personal account (лицевой счёт): who pays for a premises and how many live there."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("residents >= 0", name="residents_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    premise_id: Mapped[int] = mapped_column(ForeignKey("premises.id"), index=True)
    payer: Mapped[str | None] = mapped_column(String(500))
    residents: Mapped[int] = mapped_column(Integer)

    premise: Mapped[Premise] = relationship()


class Ownership(Timestamps, Base):
    """An owner's share of a premises, kept as an exact fraction (1/3 stays 1/3)."""

    __tablename__ = "ownerships"
    __table_args__ = (
        UniqueConstraint("premise_id", "owner"),
        CheckConstraint(
            "share_numerator > 0 AND share_denominator > 0 AND share_numerator <= share_denominator",
            name="share_in_range",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    premise_id: Mapped[int] = mapped_column(ForeignKey("premises.id"))
    owner: Mapped[str] = mapped_column(String(500))
    share_numerator: Mapped[int] = mapped_column(Integer)
    share_denominator: Mapped[int] = mapped_column(Integer)

    premise: Mapped[Premise] = relationship()

    @property
    def share(self) -> Fraction:
        return Fraction(self.share_numerator, self.share_denominator)
