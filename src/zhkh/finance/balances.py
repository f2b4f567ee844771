"""Balances derived from postings: what accounts owe by period, service and supplier, their
advances, their statements, and what was collected for and remitted to each supplier. Reads
only; set-based over a collection of accounts, never one query per account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, String, cast, func, select, type_coerce
from sqlalchemy.orm import Session

from zhkh.core.db import one_of
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind


@dataclass(frozen=True, slots=True)
class Receivable:
    account_id: int
    period: date
    service: str
    supplier_id: int
    component: Component
    balance: int  # kopecks owed; negative when the resident paid more than a later correction left


_COMPONENTS = {component.value: component for component in Component}


def open_receivables(session: Session, account_ids: Collection[int]) -> dict[int, list[Receivable]]:
    """Every receivable of these accounts with something owed on it. Allocation loads them for
    every payment of a batch: a Core query (no ORM row loading) with the sum as a bigint."""
    owed = func.sum(Posting.amount)
    rows: Iterable[Any] = (
        session.connection()
        .execute(
            select(
                Posting.account_id,
                Posting.period,
                Posting.service,
                Posting.supplier_id,
                type_coerce(Posting.component, String),  # the text: mapped below, cheaper than the enum type
                cast(owed, BigInteger),
            )
            .where(Posting.book == Book.RECEIVABLE, one_of(Posting.account_id, account_ids, session))
            .group_by(Posting.account_id, Posting.period, Posting.service, Posting.supplier_id, Posting.component)
            .having(owed > 0)
        )
        .all()
    )  # one fetch, not a driver call per row
    found: dict[int, list[Receivable]] = defaultdict(list)
    components = _COMPONENTS
    for account_id, period, service, supplier_id, component, balance in rows:
        found[account_id].append(Receivable(account_id, period, service, supplier_id, components[component], balance))
    return found


def credits(session: Session, account_ids: Collection[int] | None = None) -> list[Receivable]:
    """Receivables in credit: more paid (or taken back by recalculation) than charged."""
    owed = func.sum(Posting.amount)
    query = (
        select(Posting.account_id, Posting.period, Posting.service, Posting.supplier_id, Posting.component, owed)
        .where(Posting.book == Book.RECEIVABLE)
        .group_by(Posting.account_id, Posting.period, Posting.service, Posting.supplier_id, Posting.component)
        .having(owed < 0)
    )
    if account_ids is not None:
        query = query.where(one_of(Posting.account_id, account_ids, session))
    rows: Iterable[Any] = session.execute(query)
    return [
        Receivable(account_id, period, service, supplier_id, Component(component), int(balance))
        for account_id, period, service, supplier_id, component, balance in rows
    ]


def advances(session: Session, account_ids: Collection[int] | None = None) -> dict[int, int]:
    """Money received and not yet applied, per account (positive kopecks); all accounts that
    have any when ``account_ids`` is None."""
    held = -func.sum(Posting.amount)
    query = select(Posting.account_id, held).where(Posting.book == Book.ADVANCE).group_by(Posting.account_id)
    if account_ids is not None:
        query = query.where(one_of(Posting.account_id, account_ids, session))
    # PostgreSQL sums bigint as numeric: back to int kopecks.
    rows: Iterable[Any] = session.execute(query.having(held > 0))
    return {account_id: int(amount) for account_id, amount in rows}


def advance_arrivals(session: Session, account_ids: Collection[int]) -> dict[int, date]:
    """Per account, the day the newest money came into its advance (a payment, a credit)."""
    rows: Iterable[Any] = session.execute(
        select(Posting.account_id, func.max(FinanceTransaction.occurred_on))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(Posting.book == Book.ADVANCE, Posting.amount < 0, one_of(Posting.account_id, account_ids, session))
        .group_by(Posting.account_id)
    )
    return {row[0]: row[1] for row in rows}


@dataclass(frozen=True, slots=True)
class Movement:
    """What moved one account's receivable of one service and supplier in one month of the
    books (the month the money fact occurred in)."""

    month: date  # its first day
    service: str
    supplier_id: int
    accrued: int  # charges, benefits and recalculations
    penalty: int
    paid: int


def receivable_movements(session: Session, account_id: int) -> list[Movement]:
    """Every month's movements of the account's receivables, oldest first."""
    rows: Iterable[Any] = session.execute(
        select(
            FinanceTransaction.occurred_on,
            Posting.service,
            Posting.supplier_id,
            FinanceTransaction.kind,
            func.sum(Posting.amount),
        )
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(Posting.book == Book.RECEIVABLE, Posting.account_id == account_id)
        .group_by(FinanceTransaction.occurred_on, Posting.service, Posting.supplier_id, FinanceTransaction.kind)
    )
    totals: dict[tuple[date, str, int], dict[TransactionKind, int]] = defaultdict(lambda: defaultdict(int))
    for occurred_on, service, supplier_id, kind, amount in rows:
        totals[(occurred_on.replace(day=1), service, supplier_id)][TransactionKind(kind)] += int(amount)
    movements = [
        Movement(
            month,
            service,
            supplier_id,
            accrued=kinds[TransactionKind.ACCRUAL],
            penalty=kinds[TransactionKind.PENALTY],
            paid=-kinds[TransactionKind.ALLOCATION],
        )
        for (month, service, supplier_id), kinds in totals.items()
    ]
    return sorted(movements, key=lambda m: (m.month, m.service, m.supplier_id))


@dataclass(frozen=True, slots=True)
class SupplierPosition:
    supplier_id: int
    collected: int
    remitted: int

    @property
    def outstanding(self) -> int:
        return self.collected - self.remitted


def supplier_positions(session: Session, until: date | None = None) -> dict[int, SupplierPosition]:
    """Per supplier: collected (payments allocated to its receivables) and remitted to it."""
    collected = _sum_by_supplier(session, Book.RECEIVABLE, TransactionKind.ALLOCATION, until, sign=-1)
    remitted = _sum_by_supplier(session, Book.REMITTED, TransactionKind.REMITTANCE, until, sign=1)
    return {
        supplier: SupplierPosition(supplier, collected.get(supplier, 0), remitted.get(supplier, 0))
        for supplier in sorted(collected.keys() | remitted.keys())
    }


def _sum_by_supplier(
    session: Session, book: Book, kind: TransactionKind, until: date | None, *, sign: int
) -> dict[int, int]:
    query = (
        select(Posting.supplier_id, func.sum(Posting.amount))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(Posting.book == book, FinanceTransaction.kind == kind, Posting.supplier_id.is_not(None))
        .group_by(Posting.supplier_id)
    )
    if until is not None:
        query = query.where(FinanceTransaction.occurred_on <= until)
    rows: Iterable[Any] = session.execute(query)
    return {supplier: sign * int(amount) for supplier, amount in rows}


@dataclass(frozen=True, slots=True)
class BillFigures:
    """What a bill of one period says besides its lines, from the books."""

    opening: int  # owed at the start of the period (negative: an advance)
    paid: int  # received during the period
    penalty: int  # penalties charged during the period


def bill_figures(session: Session, account_ids: Collection[int], first: date, last: date) -> dict[int, BillFigures]:
    def per_account(query: Any) -> dict[int, int]:
        rows: Iterable[Any] = session.execute(
            query.join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
            .where(one_of(Posting.account_id, account_ids, session))
            .group_by(Posting.account_id)
        )
        return {account_id: int(amount) for account_id, amount in rows}

    total = func.sum(Posting.amount)
    during = FinanceTransaction.occurred_on.between(first, last)
    opening = per_account(
        select(Posting.account_id, total).where(
            Posting.book.in_([Book.RECEIVABLE, Book.ADVANCE]), FinanceTransaction.occurred_on < first
        )
    )
    paid = per_account(
        select(Posting.account_id, -total).where(
            Posting.book == Book.ADVANCE, FinanceTransaction.kind == TransactionKind.PAYMENT, during
        )
    )
    penalty = per_account(
        select(Posting.account_id, total).where(
            Posting.book == Book.RECEIVABLE, FinanceTransaction.kind == TransactionKind.PENALTY, during
        )
    )
    return {
        account_id: BillFigures(opening.get(account_id, 0), paid.get(account_id, 0), penalty.get(account_id, 0))
        for account_id in account_ids
    }
