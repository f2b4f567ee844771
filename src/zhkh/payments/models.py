"""Tables of payments: what was received, from which source, the review queue of payments nobody
could match to an account, online payments through a provider, and remittances to suppliers.

Money amounts are kopecks. The money itself is in the books (``finance``): a payment here has a
``payment`` transaction there, its allocation an ``allocation`` transaction, a remittance a
``remittance`` transaction. Rows are never updated, with two exceptions that carry no money: the
state of a review-queue item and of an online payment, both kept with when and by whom.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.finance.models
import zhkh.housing.models  # noqa: F401  (their tables are referenced by foreign keys)
from zhkh.core.clock import utc_now
from zhkh.core.db import Base
from zhkh.core.models import BigId, string_enum
from zhkh.core.types import UtcDateTime


class PaymentSource(StrEnum):
    BANK_STATEMENT = "bank_statement"
    AGENT_REGISTRY = "agent_registry"
    ONLINE = "online"
    CASH_DESK = "cash_desk"


class Payment(Base):
    """Money received for a personal account. Unique by its source and external id: the same
    payment delivered twice is stored once."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_payments_account", "account_id", "paid_on"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[PaymentSource] = mapped_column(string_enum(PaymentSource, "payment_source"))
    external_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    # What the payer named: a period and services go there first (ГК ст.319.1).
    period: Mapped[date | None] = mapped_column(Date)
    services: Mapped[list[str] | None] = mapped_column(JSON)
    payer: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("payment_intakes.id"))
    recorded_by: Mapped[str] = mapped_column(String(200), default="")
    transaction_id: Mapped[int] = mapped_column(ForeignKey("finance_transactions.id"))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class PaymentIntake(Base):
    """A file of payments taken in: a bank statement or an agent's registry."""

    __tablename__ = "payment_intakes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[PaymentSource] = mapped_column(string_enum(PaymentSource, "payment_source"))
    name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class ReviewState(StrEnum):
    WAITING = "waiting"
    ASSIGNED = "assigned"


class UnmatchedPayment(Base):
    """Money received that could not be matched to an account: it waits here, with the reason,
    until an operator assigns it. In the books it sits in ``unidentified`` meanwhile."""

    __tablename__ = "unmatched_payments"
    __table_args__ = (UniqueConstraint("source", "external_id"), CheckConstraint("amount > 0", name="amount_positive"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[PaymentSource] = mapped_column(string_enum(PaymentSource, "payment_source"))
    external_id: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    payer: Mapped[str] = mapped_column(Text, default="")
    payer_inn: Mapped[str] = mapped_column(String(12), default="")
    purpose: Mapped[str] = mapped_column(Text, default="")
    # What the purpose named, kept so an assigned payment still goes where its payer said.
    period: Mapped[date | None] = mapped_column(Date)
    services: Mapped[list[str] | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    intake_id: Mapped[int | None] = mapped_column(ForeignKey("payment_intakes.id"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("finance_transactions.id"))
    state: Mapped[ReviewState] = mapped_column(string_enum(ReviewState, "review_state"), default=ReviewState.WAITING)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class OnlineState(StrEnum):
    CREATED = "created"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class OnlinePayment(Base):
    """A payment started through an online provider; it becomes a ``Payment`` when the
    provider's signed callback says it succeeded."""

    __tablename__ = "online_payments"
    __table_args__ = (UniqueConstraint("provider", "provider_payment_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_payment_id: Mapped[str] = mapped_column(String(100))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[date | None] = mapped_column(Date)
    state: Mapped[OnlineState] = mapped_column(string_enum(OnlineState, "online_state"), default=OnlineState.CREATED)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Remittance(Base):
    """Collected money handed on to a supplier: the allocation postings it covers are listed in
    ``remitted_postings`` (not "everything up to an id": ids are handed out before commit, so a
    slow transaction's allocations could land below a later remittance's mark and be skipped)."""

    __tablename__ = "remittances"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    remitted_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    payments: Mapped[int] = mapped_column(BigInteger)  # how many allocation parts it covers
    transaction_id: Mapped[int] = mapped_column(ForeignKey("finance_transactions.id"))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class RemittedPosting(Base):
    """An allocation posting (money collected for a supplier) and the remittance that paid it on."""

    __tablename__ = "remitted_postings"

    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"), primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittances.id"), index=True)
