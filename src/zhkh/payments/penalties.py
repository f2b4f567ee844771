"""The monthly penalty run: for every overdue receivable, the penalty accrued during one month
(``penalty.calculate_penalty`` with the month as its window), charged into the books in one
transaction and announced once.

Set-based, one result to the kopeck with the calculator. The calculator's sub-periods of the
month, for a debt that stays the same, depend only on the debt's period: ``penalty.accrual_runs``
finds them once per period (``MonthTerms``) as integer arithmetic that rounds half-up exactly
as the calculator does. A debt nothing reduced during the month accrues its runs whole, in one
CASE expression; a debt paid during the month has its runs cut at the payments, each part on
the debt at its start. The database charges both kinds of a range of accounts without a row
travelling to Python: the range's debts are staged once in a temporary table, then each kind is
written by an INSERT … SELECT (the paid debts' penalties staged first, see ``_charge_range``).
tests/unit/payments/test_penalty.py checks the arithmetic against the calculator; the
integration tests charge random debts and payments and compare each with ``calculate_penalty``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from zhkh.core.bulk import materialized
from zhkh.core.clock import utc_now
from zhkh.core.errors import Conflict, InvalidInput
from zhkh.core.outbox import emit
from zhkh.core.periods import Period
from zhkh.core.runtime import cycle_collector_paused
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind
from zhkh.housing.models import Account
from zhkh.payments.penalty import LAST_ONE_300_DAY, AccrualRun, accrual_runs, due_date_for
from zhkh.payments.rates import penalty_rate_on

# Accounts per range of statements. Each range reads the whole table of postings once (a
# parallel scan: a range is too large a share of the accounts for the index), so fewer ranges are
# faster: June of 1,000,000 accounts took 132 s in ranges of 100,000 and 98 s in one
# (docs/benchmarks.md). The bound keeps the sorts' temporary files to about 2 GB. Nothing of a
# range comes to Python.
ACCOUNT_RANGE = 1_000_000
CAPITAL_REPAIR = "capital_repair"  # ч.14.1: 1/300 from the first day, no grace, no 1/130
SOURCE = "penalty_month"
BIGINT_MAX = 2**63 - 1


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
            _charge_range(session, transaction_id, month, in_range, terms)
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


Runs = tuple[AccrualRun, ...]


@dataclass(frozen=True)
class MonthTerms:
    """The runs of accruing days of the month per debt period, for housing services and for
    capital repair. Only the last few periods differ (grace, 1/300, the step to 1/130 inside the
    month); every older period is at 1/130 (capital repair: 1/300) for the whole month and
    shares ``matured``."""

    recent: tuple[tuple[date, Runs, Runs], ...]  # period, housing, capital repair
    matured: tuple[Runs, Runs]  # housing, capital repair

    @classmethod
    def of(cls, month: Period) -> MonthTerms:
        window = (month.first_day, month.last_day)
        rate = penalty_rate_on(month.last_day)
        recent: list[tuple[date, Runs, Runs]] = []
        period = month.previous()
        while True:
            due = due_date_for(period.first_day)
            housing = accrual_runs(due, window[1], rate, window=window)
            capital = accrual_runs(due, window[1], rate, capital_repair=True, window=window)
            if due + timedelta(days=LAST_ONE_300_DAY + 1) <= window[0]:
                # At 1/130 from the month's first day: so is every older period (its due date is
                # earlier), and capital repair has been accruing at 1/300 since long before.
                return cls(tuple(recent), (housing, capital))
            recent.append((period.first_day, housing, capital))
            period = period.previous()

    def penalty(self, debt: Any, period: Any, service: Any) -> Any:
        """A SQL expression: the penalty in kopecks of ``debt`` (a BIGINT) of ``period`` and
        ``service``, which nothing reduced during the month; NULL where 64-bit arithmetic could
        overflow, so the insert fails loudly rather than charging a wrong amount (a debt above
        ~7·10¹⁵ kopecks)."""
        capital = service == CAPITAL_REPAIR
        branches = []
        for first_day, housing, capital_runs in self.recent:
            branches.append((and_(period == first_day, capital), _sum_of(debt, capital_runs)))
            branches.append((period == first_day, _sum_of(debt, housing)))
        branches.append((capital, _sum_of(debt, self.matured[1])))
        penalty = case(*branches, else_=_sum_of(debt, self.matured[0]))
        return case((debt > self.largest_safe_debt(), null()), else_=penalty)

    def largest_safe_debt(self) -> int:
        every = [run for _, *kinds in self.recent for runs in kinds for run in runs]
        every += [run for runs in self.matured for run in runs]
        return min((_safe_debt(run) for run in every), default=BIGINT_MAX)

    def runs(self) -> Any:
        """The runs as rows, for the debts paid during the month: the period they apply to
        (NULL: every older one), capital repair or not (1/0), the runs' first and last days of
        the month, their arithmetic and the largest debt it is exact for."""
        rows: list[tuple[date | None, int, AccrualRun]] = [
            (period, kind, run)
            for period, housing, capital in self.recent
            for kind, runs in ((0, housing), (1, capital))
            for run in runs
        ]
        rows += [(None, kind, run) for kind, runs in enumerate(self.matured) for run in runs]
        if not rows:  # no run at all: a row that matches no debt keeps the query well-formed
            return select(*_run_columns(date.min, 2, AccrualRun(date.min, date.min, 0, 1, 2)))
        return union_all(*(select(*_run_columns(period, kind, run)) for period, kind, run in rows))


def _safe_debt(run: AccrualRun) -> int:
    """The largest debt whose penalty over the whole run stays within 64 bits."""
    multiplier = run.days * run.per_day
    return (BIGINT_MAX - run.half) // multiplier if multiplier else BIGINT_MAX


def _run_columns(period: date | None, kind: int, run: AccrualRun) -> tuple[Any, ...]:
    return (
        (literal(period, Date) if period is not None else cast(null(), Date)).label("period"),
        literal(kind, Integer).label("capital"),
        literal(run.first_day.day, Integer).label("first_day"),
        literal(run.last_day.day, Integer).label("last_day"),
        literal(run.per_day, BigInteger).label("per_day"),
        literal(run.half, BigInteger).label("half"),
        literal(run.divisor, BigInteger).label("divisor"),
        literal(_safe_debt(run), BigInteger).label("safe_debt"),
    )


def _sum_of(debt: Any, runs: Sequence[AccrualRun]) -> Any:
    if not runs:
        return literal(0, BigInteger)
    total = None
    for term in (run.term() for run in runs):
        # Integer division on both databases (``//``): the terms are exact in whole numbers.
        kopecks = (debt * literal(term.multiplier, BigInteger) + literal(term.half, BigInteger)) // literal(
            term.divisor, BigInteger
        )
        total = kopecks if total is None else total + kopecks
    return total


def _charge_range(session: Session, transaction_id: int, month: Period, in_range: Any, terms: MonthTerms) -> None:
    """The penalty postings of one range of accounts. Its debts owed at the month's start are
    staged once for both kinds (``materialized``: one pass over the range's receivables, and real
    row counts for the planner), and so are the paid debts' penalties, whose query then runs with
    parallel workers, before they are written."""
    with materialized(session, "penalty_debts", _owed_at_start(month, in_range)) as debts:
        constant = _constant_debt_penalties(debts, terms)
        books.write_from_query(session, transaction_id, _penalty_postings(constant))
        with materialized(session, "penalty_charges", _reduced_debt_penalties(month, in_range, debts, terms)) as paid:
            books.write_from_query(session, transaction_id, _penalty_postings(paid))


def _owed_at_start(month: Period, in_range: Any) -> Select[Any]:
    """Each principal debt of ``in_range`` owed at the month's start (its key and ``debt``), and
    whether a payment reduced it during the month (``reduced``, 1 or 0)."""
    before = FinanceTransaction.occurred_on < month.first_day
    debt = cast(func.sum(case((before, Posting.amount), else_=0)), BigInteger)
    paid_in_month = func.max(case((and_(~before, Posting.amount < 0), 1), else_=0))
    return (
        select(*_receivable_key(), debt.label("debt"), paid_in_month.label("reduced"))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(_principal(month, in_range), FinanceTransaction.occurred_on <= month.last_day)
        .group_by(*_receivable_key())
        .having(debt > 0)
    )


def _constant_debt_penalties(debts: Any, terms: MonthTerms) -> Any:
    """The penalty of every debt among ``debts`` that nothing reduced during the month."""
    penalty = terms.penalty(debts.c.debt, debts.c.period, debts.c.service)
    key = [debts.c[column.key] for column in _receivable_key()]
    return select(*key, penalty.label("amount")).where(debts.c.reduced == 0).subquery("charged")


def _penalty_postings(charged: Any) -> Any:
    """Postings of the penalties in ``charged`` (a debt's key and ``amount``) that are not zero;
    a NULL amount (beyond 64-bit safety) is kept, so the insert fails on it."""
    return select(
        literal(Book.RECEIVABLE.value),
        charged.c.account_id,
        charged.c.service,
        charged.c.supplier_id,
        charged.c.period,
        literal(Component.PENALTY.value),
        charged.c.amount,
    ).where(or_(charged.c.amount.is_(None), charged.c.amount > 0))


# --- debts paid during the month: in the database too, cut at the payments -----------------------


def _reduced_debt_penalties(month: Period, in_range: Any, debts: Any, terms: MonthTerms) -> Select[Any]:
    """The penalty of every debt among ``debts`` (of ``in_range``) that payments reduced during
    the month.

    Each of the debt's runs (``MonthTerms.runs``) is cut into parts at the payments made inside
    it: a payment on day ``d`` lowers the debt from day ``d + 1`` (the payment day still counts the
    old debt). Each part accrues on the debt at its start, the opening debt less everything paid
    before that day, and is rounded on its own: ``calculate_penalty``'s sub-periods exactly."""
    key = _receivable_key()
    opening = select(*(debts.c[column.key] for column in key), debts.c.debt).where(debts.c.reduced == 1).cte("opening")
    paid = _paid_by_day(month, in_range)
    runs = terms.runs().subquery("runs")
    recent = [period for period, _, _ in terms.recent]
    debt_runs = (
        select(*opening.c, *(column for column in runs.c if column.key != "period"))
        .join(
            runs,
            and_(
                runs.c.capital == case((opening.c.service == CAPITAL_REPAIR, 1), else_=0),
                or_(
                    runs.c.period == opening.c.period,
                    and_(runs.c.period.is_(None), opening.c.period.not_in(recent)),
                ),
            ),
        )
        .cte("debt_runs")
    )
    # Each run's parts as events in day order: the run's start (nothing paid) and, for every
    # payment made before the run's last day, the day after it (or the run's first day for a
    # payment before the run, a part of no days that only counts what was paid). A payment on day
    # ``d`` lowers the debt from day ``d + 1``; ``ord`` puts payments before the run's start on
    # the same day, so the start's part sees them.
    run_start = select(
        *debt_runs.c,
        debt_runs.c.first_day.label("start"),
        literal(0, BigInteger).label("amount"),
        literal(1, Integer).label("ord"),
    )
    same_debt = and_(*(paid.c[column.key] == debt_runs.c[column.key] for column in key))
    after_payment = select(
        *debt_runs.c,
        case((paid.c.day >= debt_runs.c.first_day, paid.c.day + 1), else_=debt_runs.c.first_day).label("start"),
        paid.c.amount,
        literal(0, Integer).label("ord"),
    ).join(paid, and_(same_debt, paid.c.day < debt_runs.c.last_day))
    events = union_all(run_start, after_payment).subquery("events")
    partition = [*(events.c[column.key] for column in key), events.c.first_day]
    order = [events.c.start, events.c.ord]
    parts = select(
        *events.c,
        cast(func.sum(events.c.amount).over(partition_by=partition, order_by=order), BigInteger).label("paid_before"),
        func.lead(events.c.start).over(partition_by=partition, order_by=order).label("next_start"),
    ).subquery("parts")
    days = func.coalesce(parts.c.next_start, parts.c.last_day + 1) - parts.c.start
    owed = case((parts.c.debt > parts.c.paid_before, parts.c.debt - parts.c.paid_before), else_=0)
    # NULL beyond 64-bit safety, as for the debts nothing reduced; one NULL part voids the sum. A
    # part of no days is (0 + half) // divisor = 0.
    part = case(
        (owed > parts.c.safe_debt, null()), else_=(owed * days * parts.c.per_day + parts.c.half) // parts.c.divisor
    )
    total = case((func.count() != func.count(part), null()), else_=func.sum(part))
    by_debt = [parts.c[column.key] for column in key]
    return select(*by_debt, total.label("amount")).group_by(*by_debt)


def _paid_by_day(month: Period, in_range: Any) -> Any:
    """Payments towards each principal debt of ``in_range`` during the month: the day of the
    month and the amount paid towards the debt that day."""
    day = cast(extract("day", FinanceTransaction.occurred_on), Integer).label("day")
    return (
        select(*_receivable_key(), day, cast(-func.sum(Posting.amount), BigInteger).label("amount"))
        .join(FinanceTransaction, FinanceTransaction.id == Posting.transaction_id)
        .where(
            _principal(month, in_range),
            Posting.amount < 0,
            FinanceTransaction.occurred_on.between(month.first_day, month.last_day),
        )
        .group_by(*_receivable_key(), FinanceTransaction.occurred_on)
        .cte("paid")
    )


def _receivable_key() -> tuple[Any, ...]:
    return (Posting.account_id, Posting.period, Posting.service, Posting.supplier_id)


def _principal(month: Period, in_range: Any) -> Any:
    return (
        (Posting.book == Book.RECEIVABLE)
        & (Posting.component == Component.PRINCIPAL)
        & (Posting.period < month.first_day)  # due in this month at the latest; grace is checked per debt
        & in_range
    )


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
