"""take_in: idempotence by external id, conflicts, the review queue, allocation into the books."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.integration.payments.conftest import Charge, day
from zhkh.core.errors import Conflict, InvalidInput, NotFound
from zhkh.core.outbox import OutboxMessage, emit
from zhkh.finance import balances
from zhkh.finance.models import Book, FinanceTransaction, Posting, TransactionKind
from zhkh.payments.models import Payment, PaymentSource, ReviewState, UnmatchedPayment
from zhkh.payments.service import Incoming, apply_advances, assign, take_in
from zhkh.worker import handlers

CASH = PaymentSource.CASH_DESK
APRIL, MAY = date(2026, 4, 1), date(2026, 5, 1)


def owed(session: Session, account_id: int) -> dict[tuple[date, str, str], int]:
    return {
        (r.period, r.service, r.component.value): r.balance
        for r in balances.open_receivables(session, [account_id]).get(account_id, [])
    }


def books_balance(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.sum(Posting.amount), 0))) or 0


def test_a_payment_pays_the_earliest_period_first(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1001", "2026-04", cold_water=10000, heating=20000)
    charge("1001", "2026-05", cold_water=12000, heating=20000)
    result = take_in(session, CASH, [Incoming("op-1", 40000, day("2026-06-10"), "1001")])

    assert len(result.recorded) == 1
    # April in full (300.00), then 100.00 of May split 12000:20000 -> 3750 and 6250.
    assert owed(session, accounts["1001"]) == {
        (MAY, "cold_water", "principal"): 12000 - 3750,
        (MAY, "heating", "principal"): 20000 - 6250,
    }
    assert balances.advances(session, [accounts["1001"]]) == {}
    allocation = session.scalars(
        select(FinanceTransaction).where(FinanceTransaction.kind == TransactionKind.ALLOCATION)
    ).one()
    assert allocation.occurred_on == day("2026-06-10")  # the debt is reduced from the payment's day
    assert books_balance(session) == 0


def test_overpayment_stays_an_advance_and_pays_the_next_bill(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1002", "2026-04", heating=10000)
    take_in(session, CASH, [Incoming("op-2", 15000, day("2026-05-05"), "1002")])
    assert balances.advances(session, [accounts["1002"]]) == {accounts["1002"]: 5000}

    charge("1002", "2026-05", heating=8000)
    assert apply_advances(session) == 5000
    assert owed(session, accounts["1002"]) == {(MAY, "heating", "principal"): 3000}
    assert balances.advances(session) == {}
    applied = session.scalars(select(FinanceTransaction).where(FinanceTransaction.source == "advance")).one()
    assert applied.occurred_on == day("2026-05-31")  # as of the bill it paid, never late


def test_the_same_payment_twice_is_stored_once(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1001", "2026-04", heating=10000)
    payment = Incoming("op-3", 5000, day("2026-05-05"), "1001")
    first = take_in(session, CASH, [payment])
    again = take_in(session, CASH, [payment, payment])
    assert (len(first.recorded), first.duplicates) == (1, 0)
    assert (len(again.recorded), again.duplicates) == (0, 2)
    assert session.scalar(select(func.count()).select_from(Payment)) == 1
    assert owed(session, accounts["1001"]) == {(APRIL, "heating", "principal"): 5000}


def test_the_same_id_with_another_amount_is_refused(session: Session, accounts: dict[str, int]) -> None:
    take_in(session, CASH, [Incoming("op-4", 5000, day("2026-05-05"), "1001")])
    with pytest.raises(Conflict, match=r"'op-4' is already recorded with 50.00 rubles, now it comes with 60.00"):
        take_in(session, CASH, [Incoming("op-4", 6000, day("2026-05-05"), "1001")])
    with pytest.raises(Conflict, match="op-5"):
        take_in(
            session,
            CASH,
            [Incoming("op-5", 100, day("2026-05-05"), "1001"), Incoming("op-5", 200, day("2026-05-05"), "1001")],
        )


@pytest.mark.parametrize("amount", [0, -500])
def test_zero_or_negative_amounts_are_refused(session: Session, accounts: dict[str, int], amount: int) -> None:
    with pytest.raises(InvalidInput, match="amount must be positive"):
        take_in(session, CASH, [Incoming("op-6", amount, day("2026-05-05"), "1001")])


def test_unmatched_money_waits_for_review_and_is_then_allocated(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1003", "2026-04", heating=7000)
    result = take_in(
        session,
        PaymentSource.BANK_STATEMENT,
        [
            Incoming("st-1", 7000, day("2026-05-06"), None, payer="Сидоров", unmatched_reason="no account in purpose"),
            Incoming("st-2", 1000, day("2026-05-06"), "9999999"),
        ],
    )
    assert result.queued == 2
    queued = {u.external_id: u for u in session.scalars(select(UnmatchedPayment))}
    assert queued["st-1"].reason == "no account in purpose"
    assert queued["st-2"].reason == "account 9999999 is not in the registry"
    unidentified = session.scalar(select(func.sum(Posting.amount)).where(Posting.book == Book.UNIDENTIFIED))
    assert unidentified == -8000  # the money is in the books, waiting

    payment = assign(session, queued["st-1"].id, "1003", operator="operator@uk")
    assert payment.account_id == accounts["1003"]
    assert queued["st-1"].state is ReviewState.ASSIGNED
    assert owed(session, accounts["1003"]) == {}
    assert session.scalar(select(func.sum(Posting.amount)).where(Posting.book == Book.UNIDENTIFIED)) == -1000
    with pytest.raises(Conflict, match="already assigned"):
        assign(session, queued["st-1"].id, "1003", operator="operator@uk")
    with pytest.raises(NotFound, match="account 42 is not in the registry"):
        assign(session, queued["st-2"].id, "42", operator="operator@uk")
    assert books_balance(session) == 0


def test_every_payment_and_allocation_goes_to_the_outbox(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1001", "2026-04", heating=10000)
    result = take_in(session, CASH, [Incoming("op-7", 4000, day("2026-05-05"), "1001")])
    messages = {m.topic: m.payload for m in session.scalars(select(OutboxMessage))}
    received = messages["payments.received"]
    assert received["payment_ids"] == result.recorded
    (payment_transaction,) = received["transaction_ids"]
    assert session.get_one(Payment, result.recorded[0]).transaction_id == payment_transaction
    (allocation_id,) = messages["payments.allocated"]["transaction_ids"]
    allocation = session.get_one(FinanceTransaction, allocation_id)
    assert (allocation.kind, allocation.source, allocation.source_id) == (
        TransactionKind.ALLOCATION,
        "payment",
        result.recorded[0],
    )
    parts = session.scalars(select(Posting).where(Posting.transaction_id == allocation_id)).all()
    assert sorted((p.book.value, p.service, p.amount) for p in parts) == [
        ("advance", None, 4000),
        ("receivable", "heating", -4000),
    ]


def test_the_worker_applies_advances_when_a_period_is_closed(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    take_in(session, CASH, [Incoming("op-8", 9000, day("2026-05-05"), "1001")])
    charge("1001", "2026-05", heating=6000)
    emit(session, "billing.closed", {"period": "2026-05"})
    session.flush()
    handler = handlers()["billing.closed"]
    for message in session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "billing.closed")):
        handler(session, message.payload)
    assert owed(session, accounts["1001"]) == {}
    assert balances.advances(session, [accounts["1001"]]) == {accounts["1001"]: 3000}


def test_a_receivable_in_credit_becomes_an_advance(session: Session, accounts: dict[str, int], charge: Charge) -> None:
    charge("1001", "2026-01", cold_water=100000)
    take_in(session, CASH, [Incoming("cr-1", 100000, day("2026-02-05"), "1001")])
    charge("1001", "2026-02", cold_water=-30000)  # a recalculation took back 300.00 of what was paid
    charge("1001", "2026-03", cold_water=20000)
    assert apply_advances(session) == 20000
    assert owed(session, accounts["1001"]) == {}
    assert balances.advances(session, [accounts["1001"]]) == {accounts["1001"]: 10000}
    assert balances.credits(session) == []
    assert books_balance(session) == 0


def test_an_advance_never_pays_a_debt_before_the_money_arrived(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    take_in(session, CASH, [Incoming("adv-1", 5000, day("2026-05-05"), "1001")])  # nothing owed yet
    charge("1001", "2026-03", heating=5000)  # March billed late: its accrual is dated 31 March
    apply_advances(session)
    applied = session.scalars(select(FinanceTransaction).where(FinanceTransaction.source == "advance")).one()
    assert applied.occurred_on == day("2026-05-05")


def test_an_assigned_payment_still_goes_to_the_period_it_named(
    session: Session, accounts: dict[str, int], charge: Charge
) -> None:
    charge("1002", "2026-04", heating=1000)
    charge("1002", "2026-05", heating=1000)
    take_in(
        session,
        PaymentSource.BANK_STATEMENT,
        [Incoming("st-9", 1000, day("2026-06-06"), None, period=MAY, unmatched_reason="no personal account")],
    )
    item = session.scalars(select(UnmatchedPayment)).one()
    assert item.period == MAY
    payment = assign(session, item.id, "1002", operator="operator@uk")
    assert payment.period == MAY
    assert owed(session, accounts["1002"]) == {(APRIL, "heating", "principal"): 1000}
