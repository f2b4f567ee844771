"""The books: transactions and their postings.

A transaction is one money fact (a period's accruals, a payment, an allocation, a penalty
charge, a remittance); its postings say which balances it moves. Debit is positive, credit
negative, and every transaction's postings sum to zero. Nothing here is ever updated or
deleted: a correction is a new transaction.

The books a posting can move (``Book``):

- ``receivable``: what a resident owes, per personal account, service, supplier, period and
  component (principal or penalty). Accruals debit it, allocations of payments credit it.
- ``accrued``: the other side of accruals and penalties, per supplier and service: what the
  platform charged on each supplier's behalf.
- ``advance``: a resident's money received and not yet applied to a debt, per account. A payment
  credits it; an allocation debits it. A credit balance left over is an advance for next bills.
- ``collection``: money received into the collection account (bank, agents, acquiring, cash desk).
- ``remitted``: money handed on to a supplier; a remittance debits it and credits ``collection``.
- ``unidentified``: money received that nobody could match to an account yet (the review
  queue); assigning it moves it to that account's ``advance``.

Collected for a supplier = allocations crediting its receivables; outstanding = collected −
remitted. Balances, debts by period and advances are sums of postings (``finance.balances``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

import zhkh.housing.models  # noqa: F401  (accounts and organisations are referenced by foreign keys)
from zhkh.core.clock import utc_now
from zhkh.core.db import Base
from zhkh.core.models import BigId, string_enum
from zhkh.core.types import UtcDateTime


class TransactionKind(StrEnum):
    ACCRUAL = "accrual"  # a closed billing period's lines: charges, benefits, recalculations
    PAYMENT = "payment"  # money received for an account
    ALLOCATION = "allocation"  # received money applied to debts
    PENALTY = "penalty"  # penalties charged for a month
    REMITTANCE = "remittance"  # collected money handed on to a supplier


class Book(StrEnum):
    RECEIVABLE = "receivable"
    ACCRUED = "accrued"
    ADVANCE = "advance"
    COLLECTION = "collection"
    REMITTED = "remitted"
    UNIDENTIFIED = "unidentified"


class Component(StrEnum):
    PRINCIPAL = "principal"
    PENALTY = "penalty"


class FinanceTransaction(Base):
    __tablename__ = "finance_transactions"
    __table_args__ = (
        Index("ix_finance_transactions_source", "source", "source_id"),
        # A period's accruals and a month's penalties are posted once, even by two runs at once.
        Index(
            "uq_finance_transactions_once",
            "source",
            "source_id",
            unique=True,
            postgresql_where=text("source IN ('billing_period', 'penalty_month')"),
            sqlite_where=text("source IN ('billing_period', 'penalty_month')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(string_enum(TransactionKind, "finance_transaction_kind"))
    # The business date: when the money moved (a payment's day), or the day a charge was made.
    occurred_on: Mapped[date] = mapped_column(Date)
    # What the fact came from, e.g. ("payment", 42) or ("billing_period", 202605): no foreign key,
    # because the books sit below the modules that post to them.
    source: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Posting(Base):
    __tablename__ = "postings"
    __table_args__ = (
        Index("ix_postings_transaction", "transaction_id"),
        Index(
            "ix_postings_account",
            "account_id",
            "book",
            postgresql_where=text("account_id IS NOT NULL"),
            sqlite_where=text("account_id IS NOT NULL"),
        ),
        Index(
            "ix_postings_supplier",
            "supplier_id",
            "book",
            postgresql_where=text("supplier_id IS NOT NULL"),
            sqlite_where=text("supplier_id IS NOT NULL"),
        ),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        CheckConstraint(
            "(book = 'receivable') = (account_id IS NOT NULL AND period IS NOT NULL AND component IS NOT NULL"
            " AND supplier_id IS NOT NULL AND service IS NOT NULL)",
            name="receivable_dimensions",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("finance_transactions.id"))
    book: Mapped[Book] = mapped_column(string_enum(Book, "finance_book"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    service: Mapped[str | None] = mapped_column(String(32))
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    period: Mapped[date | None] = mapped_column(Date)  # the billing period a receivable belongs to
    component: Mapped[Component | None] = mapped_column(string_enum(Component, "finance_component"))
    amount: Mapped[int] = mapped_column(BigInteger)  # kopecks; debit positive, credit negative
