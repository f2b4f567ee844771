"""The monthly penalty run: for every overdue receivable, the penalty accrued during one month
(``penalty.calculate_penalty`` with the month as its window), charged into the books in one
transaction and announced once.

Two paths, one result. A debt that nothing reduced during the month (most of them) has a penalty
that depends only on its period and amount: ``penalty.constant_debt_terms`` turns the calculator's
sub-periods into integer terms, and the database charges all such debts of a range of accounts
in one INSERT … SELECT, without a row travelling to Python. A debt paid during the month is
computed in Python by ``calculate_penalty`` with its payments. Both round each sub-period
half-up to the kopeck, so the paths agree exactly (tests/unit/payments/test_penalty.py checks
the terms against the calculator; the integration tests run both paths)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, case, cast, func, literal, null, or_, select
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.errors import Conflict, InvalidInput
from zhkh.core.outbox import emit
from zhkh.core.periods import Period
from zhkh.core.runtime import cycle_collector_paused
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind
from zhkh.housing.models import Account
from zhkh.payments.penalty import (
    LAST_ONE_300_DAY,
    DebtPayment,
    IntegerTerm,
    calculate_penalty,
    constant_debt_terms,
    due_date_for,
)
from zhkh.payments.rates import penalty_rate_on

ACCOUNT_RANGE = 100_000  # accounts per statement: bounds the database's aggregation, not Python's
CAPITAL_REPAIR = "capital_repair"  # ч.14.1: 1/300 from the first day, no grace, no 1/130
SOURCE = "penalty_month"
BIGINT_MAX = 2**63 - 1

Key = tuple[int, date, str, int]  # account, period, service, supplier
Terms = tuple[IntegerTerm, ...]


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
    """Charge the penalties accrued in ``month``; a month is charged once. A month with nothing
    to charge leaves no transaction (it can be charged later, e.g. after a late accrual)."""
    if month.last_day >= utc_now().date():
        raise InvalidInput(f"penalties for {month} can be charged once the month is over")
    if session.scalar(select(FinanceTransaction.id).where(_month_source(month))) is not None:
        raise Conflict(f"penalties for {month} are already charged")
    run = PenaltyRun(month)
    savepoint = session.begin_nested()
    try:
        transaction_id = books.open_transaction(
            session, TransactionKind.PENALTY, month.last_day, SOURCE, _source_id(month), f"penalties accrued in {month}"
        )
        terms = MonthTerms.of(month)
        for in_range in _account_ranges(session):
            books.write_from_query(session, transaction_id, _constant_debt_penalties(month, in_range, terms))
            _charge_debts_paid_during(session, month, in_range, transaction_id)
        _summarise(session, transaction_id, run)
        if not run.receivables:
            savepoint.rollback()
            return run
        books.write_from_query(session, transaction_id, _suppliers_accrued(transaction_id))
        books.check_written_balanced(session, transaction_id, f"penalties accrued in {month}")
    except BaseException:
        savepoint.rollback()
        raise
    savepoint.commit()
    emit(session, "payments.penalty_charged", {"month": str(month), "transaction_id": transaction_id})
    run.transaction_id = transaction_id
    return run


def _source_id(month: Period) -> int:
    return month.year * 100 + month.month


def _month_source(month: Period) -> Any:
    return (FinanceTransaction.source == SOURCE) & (FinanceTransaction.source_id == _source_id(month))


def _account_ranges(session: Session) -> Iterator[Any]:
    lowest, highest = session.execute(select(func.min(Account.id), func.max(Account.id))).one()
    if lowest is None:
        return
    for start in range(lowest, highest + 1, ACCOUNT_RANGE):
        yield Posting.account_id.between(start, start + ACCOUNT_RANGE - 1)


# --- debts nothing reduced during the month: in the database --------------------------------------


@dataclass(frozen=True)
class MonthTerms:
    """The integer terms of the month's penalty per debt period, for housing services and for
    capital repair. Only the last few periods differ (grace, 1/300, the step to 1/130 inside the
    month); every older period is at 1/130 (capital repair: 1/300) for the whole month and
    shares ``matured``."""

    recent: tuple[tuple[date, Terms, Terms], ...]  # period, housing, capital repair
    matured: tuple[Terms, Terms]  # housing, capital repair

    @classmethod
    def of(cls, month: Period) -> MonthTerms:
        window = (month.first_day, month.last_day)
        rate = penalty_rate_on(month.last_day)
        recent: list[tuple[date, Terms, Terms]] = []
        period = month.previous()
        while True:
            due = due_date_for(period.first_day)
            housing = constant_debt_terms(due, window[1], rate, window=window)
            capital = constant_debt_terms(due, window[1], rate, capital_repair=True, window=window)
            if due + timedelta(days=LAST_ONE_300_DAY + 1) <= window[0]:
                # At 1/130 from the month's first day: so is every older period (its due date is
                # earlier), and capital repair has been accruing at 1/300 since long before.
                return cls(tuple(recent), (housing, capital))
            recent.append((period.first_day, housing, capital))
            period = period.previous()

    def penalty(self, debt: Any, period: Any, service: Any) -> Any:
        """A SQL expression: the penalty in kopecks of ``debt`` (a BIGINT) of ``period`` and
        ``service``; NULL where 64-bit arithmetic could overflow, so the insert fails loudly
        rather than charging a wrong amount (a debt above ~7·10¹⁵ kopecks)."""
        capital = service == CAPITAL_REPAIR
        branches = []
        for first_day, housing, capital_terms in self.recent:
            branches.append((and_(period == first_day, capital), _sum_of(debt, capital_terms)))
            branches.append((period == first_day, _sum_of(debt, housing)))
        branches.append((capital, _sum_of(debt, self.matured[1])))
        penalty = case(*branches, else_=_sum_of(debt, self.matured[0]))
        return case((debt > self.largest_safe_debt(), null()), else_=penalty)

    def largest_safe_debt(self) -> int:
        every = [term for _, *kinds in self.recent for terms in kinds for term in terms]
        every += [term for terms in self.matured for term in terms]
        return min(
            ((BIGINT_MAX - term.half) // term.multiplier for term in every if term.multiplier), default=BIGINT_MAX
        )


def _sum_of(debt: Any, terms: Sequence[IntegerTerm]) -> Any:
    if not terms:
        return literal(0, BigInteger)
    total = None
    for term in terms:
        # Integer division on both databases (``//``): the terms are exact in whole numbers.
        kopecks = (debt * literal(term.multiplier, BigInteger) + literal(term.half, BigInteger)) // literal(
            term.divisor, BigInteger
        )
        total = kopecks if total is None else total + kopecks
    return total


def _owed_at_start(month: Period, in_range: Any, *, reduced: bool) -> Any:
    """Each principal debt of ``in_range`` owed at the month's start (its key and ``debt``), of
    those reduced during the month or of the others, in one pass over the range's receivables."""
    before = FinanceTransaction.occurred_on < month.first_day
    debt = cast(func.sum(case((before, Posting.amount), else_=0)), BigInteger)
    paid_in_month = func.max(case((and_(~before, Posting.amount < 0), 1), else_=0))
    return (
        select(*_receivable_key(), debt.label("debt"))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(_principal(month, in_range), FinanceTransaction.occurred_on <= month.last_day)
        .group_by(*_receivable_key())
        .having(debt > 0, paid_in_month == (1 if reduced else 0))
    )


def _constant_debt_penalties(month: Period, in_range: Any, terms: MonthTerms) -> Any:
    """The penalty postings of every debt of ``in_range`` that nothing reduced during the month."""
    owed = _owed_at_start(month, in_range, reduced=False).subquery()
    penalty = terms.penalty(owed.c.debt, owed.c.period, owed.c.service)
    charged = select(
        literal(Book.RECEIVABLE.value),
        owed.c.account_id,
        owed.c.service,
        owed.c.supplier_id,
        owed.c.period,
        literal(Component.PENALTY.value),
        penalty.label("amount"),
    ).subquery()
    return select(*charged.c).where(or_(charged.c.amount.is_(None), charged.c.amount > 0))


# --- debts paid during the month: in Python, with their payments -------------------------------


def _charge_debts_paid_during(session: Session, month: Period, in_range: Any, transaction_id: int) -> None:
    paid = _paid_during(session, month, in_range)
    if not paid:
        return
    opening: dict[Key, int] = {
        (account, period, service, supplier): debt
        for account, period, service, supplier, debt in session.execute(_owed_at_start(month, in_range, reduced=True))
    }
    window = (month.first_day, month.last_day)
    rows = []
    for key in sorted(paid.keys() & opening.keys()):
        account, period, service, supplier = key
        amount = _accrued(service, opening[key], due_date_for(period), paid[key], window)
        if amount:
            rows.append(
                books.receivable(account, service, supplier, period, amount, Component.PENALTY).row(transaction_id)
            )
    books.write_entries(session, rows)


def _accrued(service: str, debt: int, due: date, payments: Sequence[DebtPayment], window: tuple[date, date]) -> int:
    """The penalty on one debt accrued within ``window`` (a month)."""
    if due >= window[1]:
        return 0
    calculation = calculate_penalty(
        debt, due, window[1], payments, capital_repair=service == CAPITAL_REPAIR, window=window
    )
    return calculation.total_kopecks


def _receivable_key() -> tuple[Any, ...]:
    return (Posting.account_id, Posting.period, Posting.service, Posting.supplier_id)


def _principal(month: Period, in_range: Any) -> Any:
    return (
        (Posting.book == Book.RECEIVABLE)
        & (Posting.component == Component.PRINCIPAL)
        & (Posting.period < month.first_day)  # due in this month at the latest; grace is checked per debt
        & in_range
    )


def _paid_during(session: Session, month: Period, in_range: Any) -> dict[Key, list[DebtPayment]]:
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
        paid[(account, period, service, supplier)].append(DebtPayment(day, int(amount)))
    return paid


# --- the transaction's other side and its figures ------------------------------------------------


def _suppliers_accrued(transaction_id: int) -> Any:
    """Each supplier's accrued charges −, against the receivables the run wrote."""
    charged = func.sum(Posting.amount)
    return (
        select(literal(Book.ACCRUED.value), null(), Posting.service, Posting.supplier_id, null(), null(), -charged)
        .where(Posting.transaction_id == transaction_id, Posting.book == Book.RECEIVABLE)
        .group_by(Posting.service, Posting.supplier_id)
    )


def _summarise(session: Session, transaction_id: int, run: PenaltyRun) -> None:
    rows: Iterable[Any] = session.execute(
        select(Posting.account_id, func.sum(Posting.amount), cast(func.count(), Integer))
        .where(Posting.transaction_id == transaction_id, Posting.book == Book.RECEIVABLE)
        .group_by(Posting.account_id)
    )
    for account, amount, receivables in rows:
        run.by_account[account] = int(amount)
        run.receivables += receivables
    run.accounts = len(run.by_account)
    run.total = sum(run.by_account.values())
