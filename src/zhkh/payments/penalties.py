"""The monthly penalty run: for every overdue receivable, the penalty accrued during one month
(``penalty.calculate_penalty`` with the month as its window), charged into the books in one
transaction and announced per account. Loaded set-based a range of accounts at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.errors import Conflict, InvalidInput
from zhkh.core.outbox import emit
from zhkh.core.periods import Period
from zhkh.core.runtime import cycle_collector_paused
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind
from zhkh.housing.models import Account
from zhkh.payments.penalty import DebtPayment, calculate_penalty, due_date_for

ACCOUNT_RANGE = 20000
CAPITAL_REPAIR = "capital_repair"  # ч.14.1: 1/300 from the first day, no grace, no 1/130
SOURCE = "penalty_month"

Key = tuple[int, date, str, int]  # account, period, service, supplier


@dataclass
class PenaltyRun:
    month: Period
    transaction_id: int | None = None
    accounts: int = 0
    receivables: int = 0
    total: int = 0  # kopecks
    by_account: dict[int, int] = field(default_factory=dict)


@cycle_collector_paused()
def charge_penalties(session: Session, month: Period) -> PenaltyRun:
    """Charge the penalties accrued in ``month``; a month is charged once."""
    if month.last_day >= utc_now().date():
        raise InvalidInput(f"penalties for {month} can be charged once the month is over")
    if session.scalar(select(FinanceTransaction.id).where(_month_source(month))) is not None:
        raise Conflict(f"penalties for {month} are already charged")
    run = PenaltyRun(month)
    charges: dict[Key, int] = {}
    window = (month.first_day, month.last_day)
    due_dates: dict[date, date] = {}  # per debt period: a few periods, millions of debts
    for opening, payments in _overdue_in_ranges(session, month):
        for key, debt in opening.items():
            period = key[1]
            due = due_dates.get(period) or due_dates.setdefault(period, due_date_for(period))
            amount = _accrued(key[2], debt, due, payments.get(key, ()), window)
            if amount:
                charges[key] = amount
    if charges:
        _post(session, month, charges, run)
    return run


def _month_source(month: Period) -> Any:
    return (FinanceTransaction.source == SOURCE) & (FinanceTransaction.source_id == month.year * 100 + month.month)


def _accrued(service: str, debt: int, due: date, payments: Sequence[DebtPayment], window: tuple[date, date]) -> int:
    """The penalty on one debt accrued within ``window`` (a month)."""
    if due >= window[1]:
        return 0
    calculation = calculate_penalty(
        debt, due, window[1], payments, capital_repair=service == CAPITAL_REPAIR, window=window
    )
    return calculation.total_kopecks


def _overdue_in_ranges(
    session: Session, month: Period
) -> Iterator[tuple[dict[Key, int], dict[Key, list[DebtPayment]]]]:
    """Per range of account ids: each principal receivable owed at the start of the month whose
    period can be overdue by then, and what was paid on it during the month."""
    lowest, highest = session.execute(select(func.min(Account.id), func.max(Account.id))).one()
    if lowest is None:
        return
    for start in range(lowest, highest + 1, ACCOUNT_RANGE):
        in_range = Posting.account_id.between(start, start + ACCOUNT_RANGE - 1)
        opening = _opening(session, month, in_range)
        if opening:
            yield opening, _paid_during(session, month, in_range, opening.keys())


def _receivable_key() -> tuple[Any, ...]:
    return (Posting.account_id, Posting.period, Posting.service, Posting.supplier_id)


def _principal(month: Period, in_range: Any) -> Any:
    return (
        (Posting.book == Book.RECEIVABLE)
        & (Posting.component == Component.PRINCIPAL)
        & (Posting.period < month.first_day)  # due in this month at the latest; grace is checked per debt
        & in_range
    )


def _opening(session: Session, month: Period, in_range: Any) -> dict[Key, int]:
    owed = func.sum(Posting.amount)
    rows: Iterable[Any] = session.execute(
        select(*_receivable_key(), owed)
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(_principal(month, in_range), FinanceTransaction.occurred_on < month.first_day)
        .group_by(*_receivable_key())
        .having(owed > 0)
    )
    return {(account, period, service, supplier): int(amount) for account, period, service, supplier, amount in rows}


def _paid_during(session: Session, month: Period, in_range: Any, keys: Iterable[Key]) -> dict[Key, list[DebtPayment]]:
    wanted = set(keys)
    rows: Iterable[Any] = session.execute(
        select(*_receivable_key(), FinanceTransaction.occurred_on, -func.sum(Posting.amount))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(
            _principal(month, in_range),
            Posting.amount < 0,
            FinanceTransaction.occurred_on.between(month.first_day, month.last_day),
        )
        .group_by(*_receivable_key(), FinanceTransaction.occurred_on)
    )
    paid: dict[Key, list[DebtPayment]] = defaultdict(list)
    for account, period, service, supplier, day, amount in rows:
        key = (account, period, service, supplier)
        if key in wanted:
            paid[key].append(DebtPayment(day, int(amount)))
    return paid


def _post(session: Session, month: Period, charges: dict[Key, int], run: PenaltyRun) -> None:
    """One ``penalty`` transaction: each receivable's penalty component +, the suppliers' accrued
    charges −; one outbox message naming it (the books hold each account's penalties)."""
    transaction_id = books.open_transaction(
        session,
        TransactionKind.PENALTY,
        month.last_day,
        SOURCE,
        month.year * 100 + month.month,
        f"penalties accrued in {month}",
    )
    rows = []
    by_supplier: dict[tuple[str, int], int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    for (account, period, service, supplier), amount in sorted(charges.items()):
        rows.append(books.receivable(account, service, supplier, period, amount, Component.PENALTY).row(transaction_id))
        by_supplier[(service, supplier)] += amount
        per_account[account] += amount
    for (service, supplier), amount in by_supplier.items():
        rows.append(books.Entry(Book.ACCRUED, -amount, service=service, supplier_id=supplier).row(transaction_id))
    books.write_entries(session, rows)
    emit(session, "payments.penalty_charged", {"month": str(month), "transaction_id": transaction_id})
    run.transaction_id = transaction_id
    run.accounts = len(per_account)
    run.receivables = len(charges)
    run.total = sum(charges.values())
    run.by_account = dict(per_account)
