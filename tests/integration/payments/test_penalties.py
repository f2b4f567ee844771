"""The monthly penalty run on the books. Figures by hand: April 2026 is due on 15 May 2026
(DOMAIN.md: the 15th from March 2026); delay day 1 is 16 May, day 30 is 14 June, so 1/300 runs
from 15 June. The rate is 9.5 % (the cap of ПП №474 until 31.12.2026)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.integration.payments.conftest import Charge, day
from zhkh.core.clock import utc_now
from zhkh.core.errors import Conflict, InvalidInput
from zhkh.core.outbox import OutboxMessage
from zhkh.core.periods import Period
from zhkh.finance import balances
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind
from zhkh.payments import penalties as penalty_run
from zhkh.payments.models import PaymentSource
from zhkh.payments.penalties import charge_penalties
from zhkh.payments.penalty import DebtPayment, calculate_penalty, due_date_for
from zhkh.payments.service import Incoming, take_in

MAY, JUNE = Period(2026, 5), Period(2026, 6)
APRIL = date(2026, 4, 1)


def test_penalties_of_a_month_by_both_rules(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1001", "2026-04", heating=100000, capital_repair=30000)
    # 400.00 towards April's heating on 20 June: the debt is 600.00 from 21 June.
    take_in(
        session,
        PaymentSource.CASH_DESK,
        [Incoming("r-1", 40000, day("2026-06-20"), "1001", period=APRIL, services=("heating",))],
    )

    june = charge_penalties(session, JUNE)
    # heating: 1000.00 × 6 days (15–20 June) × 9.5 % / 300 = 1.90; 600.00 × 10 days × 9.5 % / 300 = 1.90
    # capital repair (ч.14.1, no grace): 300.00 × 30 days × 9.5 % / 300 = 2.85
    assert june.by_account == {accounts["1001"]: 190 + 190 + 285}
    penalties = {
        r.service: r.balance
        for r in balances.open_receivables(session, [accounts["1001"]])[accounts["1001"]]
        if r.component.value == "penalty"
    }
    assert penalties == {"heating": 380, "capital_repair": 285}

    may = charge_penalties(session, MAY)
    # heating is still in its 30 days of grace in May; capital repair: 16–31 May = 16 days:
    # 300.00 × 16 × 9.5 % / 300 = 1.52
    assert may.by_account == {accounts["1001"]: 152}
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "payments.penalty_charged")).first()
    assert message is not None
    assert message.payload["month"] == "2026-06"


def test_a_month_is_charged_once(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1002", "2026-01", heating=10000)
    charge_penalties(session, JUNE)
    with pytest.raises(Conflict, match="penalties for 2026-06 are already charged"):
        charge_penalties(session, JUNE)


def test_a_debt_paid_before_the_month_has_no_penalty(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1003", "2026-03", heating=10000)
    take_in(session, PaymentSource.CASH_DESK, [Incoming("r-2", 10000, day("2026-05-31"), "1003")])
    assert charge_penalties(session, JUNE).total == 0


def test_a_month_that_is_not_over_is_refused(session: Session, accounts: dict[str, int]) -> None:
    with pytest.raises(InvalidInput, match="once the month is over"):
        charge_penalties(session, Period.of(utc_now().date()))


def test_the_database_keeps_a_month_charged_once(session: Session, accounts: dict[str, int]) -> None:
    for _ in range(2):
        session.add(
            FinanceTransaction(
                kind=TransactionKind.PENALTY,
                occurred_on=date(2026, 6, 30),
                source="penalty_month",
                source_id=202606,
                description="penalties",
            )
        )
    with pytest.raises(IntegrityError), session.begin_nested():
        session.flush()


@pytest.mark.parametrize("account_range", [penalty_run.ACCOUNT_RANGE, 1], ids=["one range", "a range per account"])
def test_every_kind_of_debt_gets_the_calculators_penalty(
    session: Session, accounts: dict[str, int], charge: Charge, account_range: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # July 2026 over debts of many ages: the run charges debts nothing reduced and debts paid
    # during July; each must equal calculate_penalty on that debt, however the accounts are cut
    # into ranges (each range stages its debts in the same temporary tables).
    monkeypatch.setattr(penalty_run, "ACCOUNT_RANGE", account_range)
    for month in ("2024-11", "2025-12", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"):
        charge("1001", month, heating=123457, capital_repair=54321)
    charge("1002", "2026-03", heating=100000)
    take_in(
        session,
        PaymentSource.CASH_DESK,
        [Incoming("r-3", 30000, day("2026-07-10"), "1002", period=date(2026, 3, 1), services=("heating",))],
    )
    july = Period(2026, 7)
    run = charge_penalties(session, july)

    window = (july.first_day, july.last_day)
    expected_1001 = 0
    for period in (date(2024, 11, 1), date(2025, 12, 1), *(date(2026, m, 1) for m in range(2, 7))):
        due = due_date_for(period)
        for service, debt in (("heating", 123457), ("capital_repair", 54321)):
            if due < window[1]:
                expected_1001 += calculate_penalty(
                    debt, due, window[1], (), capital_repair=service == "capital_repair", window=window
                ).total_kopecks
    # 1002, March 2026 due 15.04.2026: 1–10 July at 1/300 on 1,000.00: 1000 × 9.5 % × 10 / 300 = 3.1666… → 3.17;
    # 11–14 July at 1/300 on 700.00: 700 × 9.5 % × 4 / 300 = 0.8866… → 0.89;
    # 15–31 July at 1/130 on 700.00: 700 × 9.5 % × 17 / 130 = 8.6961… → 8.70.
    assert run.by_account == {accounts["1001"]: expected_1001, accounts["1002"]: 317 + 89 + 870}
    assert expected_1001 > 0
    # June 2026 is due 15.07.2026: its heating is within the grace in July, its capital repair
    # accrues from 16 July (ч.14.1, no grace); so 7 capital repair, 6 heating and 1002's debt.
    assert run.receivables == 7 + 6 + 1
    postings = session.execute(
        select(Posting.book, func.sum(Posting.amount))
        .where(Posting.transaction_id == run.transaction_id)
        .group_by(Posting.book)
    ).all()
    assert dict(postings) == {Book.RECEIVABLE: run.total, Book.ACCRUED: -run.total}


def test_a_month_with_nothing_to_charge_leaves_no_transaction(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1001", "2026-06", heating=10000)  # due 15.07.2026: in July still within the grace
    run = charge_penalties(session, Period(2026, 7))
    assert (run.total, run.receivables, run.transaction_id) == (0, 0, None)
    assert (
        session.scalar(
            select(func.count())
            .select_from(FinanceTransaction)
            .where(FinanceTransaction.kind == TransactionKind.PENALTY)
        )
        == 0
    )
    charge("1001", "2026-03", heating=10000)  # a late accrual: July can be charged now
    assert charge_penalties(session, Period(2026, 7)).receivables == 1


def test_a_debt_too_large_for_exact_arithmetic_is_refused_not_charged_wrong(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1001", "2026-01", heating=2**62)
    with pytest.raises(IntegrityError), session.begin_nested():
        charge_penalties(session, Period(2026, 7))


@pytest.mark.parametrize("month", [Period(2026, 7), Period(2026, 5), Period(2022, 10)], ids=str)
def test_debts_paid_during_the_month_get_the_calculators_penalty(
    session: Session, accounts: dict[str, int], charge: Charge, supplier: int, month: Period
) -> None:
    # Random debts of seven periods before the month, some paid down before it, all paid on one
    # to four random days of it (several on one day, more than owed, on the first and the last
    # day): each debt's penalty must equal calculate_penalty with its payments. July 2026 steps
    # from 1/300 to 1/130 inside the month; May 2026 has debts in their grace; October 2022 ends
    # a moratorium (accrual from 2 October) and its periods were due on the 10th.
    rng = random.Random(str(month))
    window = (month.first_day, month.last_day)
    last = month.last_day.day
    expected: dict[tuple[int, str, date], int] = {}
    for number, account_id in accounts.items():
        period = month
        for _ in range(7):
            period = period.previous()
            for service in ("heating", "capital_repair"):
                debt = rng.randint(1, 500_000)
                charge(number, str(period), **{service: debt})
                if rng.random() < 0.3:  # paid down before the month: a smaller opening debt
                    paid_before = rng.randint(1, debt - 1) if debt > 1 else 0
                    _pay(
                        session, account_id, service, supplier, period, month.first_day - timedelta(days=3), paid_before
                    )
                    debt -= paid_before
                days = [rng.choice([1, last, *range(1, last + 1)]) for _ in range(rng.randint(1, 4))]
                payments = [DebtPayment(month.first_day.replace(day=d), rng.randint(1, debt)) for d in days]
                for payment in payments:
                    _pay(session, account_id, service, supplier, period, payment.paid_on, payment.amount_kopecks)
                due = due_date_for(period.first_day)
                if debt > 0 and due < window[1]:
                    capital = service == "capital_repair"
                    penalty = calculate_penalty(
                        debt, due, window[1], payments, capital_repair=capital, window=window
                    ).total_kopecks
                    if penalty:
                        expected[(account_id, service, period.first_day)] = penalty

    run = charge_penalties(session, month)
    charged = session.execute(
        select(Posting.account_id, Posting.service, Posting.period, Posting.amount).where(
            Posting.transaction_id == run.transaction_id, Posting.book == Book.RECEIVABLE
        )
    ).all()
    assert {(a, s, p): amount for a, s, p, amount in charged} == expected
    assert len(expected) > 20


def test_a_paid_debt_too_large_for_exact_arithmetic_is_refused_not_charged_wrong(
    session: Session, accounts: dict[str, int], charge: Charge, supplier: int
) -> None:
    charge("1001", "2026-01", heating=2**62)
    _pay(session, accounts["1001"], "heating", supplier, Period(2026, 1), date(2026, 7, 10), 100)
    with pytest.raises(IntegrityError), session.begin_nested():
        charge_penalties(session, Period(2026, 7))


def _pay(session: Session, account_id: int, service: str, supplier: int, period: Period, on: date, amount: int) -> None:
    """``amount`` of the account's advance paid towards one receivable on ``on``."""
    if amount:
        books.record(
            session,
            TransactionKind.ALLOCATION,
            on,
            "test",
            None,
            f"paid {amount} on {on}",
            [
                books.receivable(account_id, service, supplier, period.first_day, -amount, Component.PRINCIPAL),
                books.Entry(Book.ADVANCE, amount, account_id=account_id),
            ],
        )
