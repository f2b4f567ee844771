"""Tables of billing: periods and their state, accrual lines, what each run found it could not
bill, the registry as each period was billed, and residents' temporary absences.

Lines of an open period are a draft: running the period again replaces them. Closing a period
freezes its lines for good; a later change to what they were computed from produces
recalculation lines in the next open period that reference what they correct.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.housing.models
import zhkh.metering.models  # noqa: F401  (their tables are referenced by foreign keys here)
from zhkh.core.db import Base
from zhkh.core.models import BigId, Timestamps, string_enum
from zhkh.core.types import ExactDecimal, UtcDateTime
from zhkh.tariffs.catalogue import ServiceCode


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class BillingPeriod(Timestamps, Base):
    __tablename__ = "billing_periods"

    period: Mapped[date] = mapped_column(Date, primary_key=True)  # the first day of the month
    status: Mapped[PeriodStatus] = mapped_column(string_enum(PeriodStatus, "billing_period_status"))
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The newest outbox message when the period closed: changes announced after it (late
    # readings, catalogue imports, absences) are what makes its recalculation necessary.
    closed_outbox_id: Mapped[int | None] = mapped_column(BigInteger)


class AccrualLine(Base):
    """One line of a bill: a charge, a benefit (negative) or a recalculation of a closed period."""

    __tablename__ = "accrual_lines"
    __table_args__ = (
        Index("ix_accrual_lines_period_account", "period", "account_id"),
        # Partial: only recalculations correct a period, and only estimates are looked up by
        # meter (to deduct them when readings resume); indexing every line would slow the run.
        Index(
            "ix_accrual_lines_corrects_period",
            "corrects_period",
            postgresql_where=text("corrects_period IS NOT NULL"),
            sqlite_where=text("corrects_period IS NOT NULL"),
        ),
        # Deleting a draft line makes PostgreSQL look for lines that reference it: without this
        # index, a scan of the whole table for each deleted line.
        Index(
            "ix_accrual_lines_corrects_line",
            "corrects_line_id",
            postgresql_where=text("corrects_line_id IS NOT NULL"),
            sqlite_where=text("corrects_line_id IS NOT NULL"),
        ),
        Index(
            "ix_accrual_lines_estimates",
            "meter_id",
            "period",
            postgresql_where=text("method IN ('average', 'norm')"),
            sqlite_where=text("method IN ('average', 'norm')"),
        ),
        CheckConstraint("(kind = 'recalculation') = (corrects_period IS NOT NULL)", name="recalculation_corrects"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    service: Mapped[ServiceCode] = mapped_column(string_enum(ServiceCode, "accrual_service"))
    zone: Mapped[int] = mapped_column(SmallInteger)  # 0: single-rate
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(16))  # charge, benefit, recalculation
    method: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[Decimal] = mapped_column(ExactDecimal)
    unit: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    multiplier: Mapped[Decimal | None] = mapped_column(ExactDecimal)
    amount: Mapped[int] = mapped_column(BigInteger)  # kopecks
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    meter_id: Mapped[int | None] = mapped_column(ForeignKey("meters.id"))
    benefit_id: Mapped[int | None] = mapped_column(ForeignKey("benefits.id"))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # A recalculation: the closed period it corrects, the line it corrects (if one), and why.
    corrects_period: Mapped[date | None] = mapped_column(Date)
    corrects_line_id: Mapped[int | None] = mapped_column(ForeignKey("accrual_lines.id"))
    reason: Mapped[str | None] = mapped_column(Text)


class BillingProblemRow(Base):
    """An account's service the run could not bill, and why (no tariff, no supplier, ...)."""

    __tablename__ = "billing_problems"
    __table_args__ = (Index("ix_billing_problems_period", "period", "account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    period: Mapped[date] = mapped_column(Date)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    service: Mapped[str] = mapped_column(String(32))
    code: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)


class BilledAccount(Base):
    """The registry of an account as its period was billed. The registry keeps only the present;
    recalculating a closed period must use what was true then (area, residents, owners)."""

    __tablename__ = "billed_accounts"

    period: Mapped[date] = mapped_column(Date, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    area: Mapped[Decimal] = mapped_column(ExactDecimal)
    residents: Mapped[int] = mapped_column(Integer)
    owners: Mapped[int] = mapped_column(Integer)
    meter_possible: Mapped[bool] = mapped_column(Boolean)


class TemporaryAbsence(Timestamps, Base):
    """A resident away from a premises (ПП 354 п.86-97), from the day they left to the day they
    came back; neither day counts as a day away."""

    __tablename__ = "temporary_absences"
    __table_args__ = (CheckConstraint("returned_on > departed_on", name="returned_after_departed"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    departed_on: Mapped[date] = mapped_column(Date)
    returned_on: Mapped[date] = mapped_column(Date)
    persons: Mapped[int] = mapped_column(SmallInteger, server_default="1")
