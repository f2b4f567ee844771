"""The set-based allocation (PostgreSQL) against its definition, ``allocation.allocate_payment``
applied in Python: random books and payments, each allocated both ways on the same books, must
give the same postings, payment by payment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import registry
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind
from zhkh.housing.models import Account, Organisation, OrganisationRole
from zhkh.payments import service
from zhkh.payments.models import Payment, PaymentSource
from zhkh.payments.service import Incoming, take_in

# Few periods and services, so that one period often has several debts to split between.
PERIODS = [date(2026, month, 1) for month in (2, 3, 4)]
SERVICES = ["cold_water", "heating", "hot_water"]

debt_strategy = st.tuples(
    st.sampled_from(PERIODS),
    st.sampled_from(SERVICES),
    st.integers(0, 1),  # which supplier
    st.sampled_from([Component.PRINCIPAL, Component.PENALTY]),
    # Small amounts make equal remainders (ties) likely; a second posting may pay part of it
    # or more than all of it (a credit, which is not a debt).
    st.sampled_from([1, 2, 100]) | st.integers(1, 3000),
    st.integers(-3500, 0),
)
payment_strategy = st.tuples(
    st.integers(1, 10) | st.integers(1, 9000),
    st.integers(0, 5),  # day offset in June
    st.none() | st.sampled_from([*PERIODS, date(2026, 5, 1)]),
    st.lists(st.sampled_from(SERVICES), max_size=2, unique=True),
)
account_strategy = st.tuples(st.lists(debt_strategy, max_size=10), st.lists(payment_strategy, min_size=1, max_size=4))


@pytest.fixture
def town(postgres_session: Session, tmp_path: Path) -> tuple[list[int], list[int]]:
    registry(postgres_session, tmp_path, premises=3)
    accounts = list(postgres_session.scalars(select(Account.id).order_by(Account.id)))
    supplier = Organisation(inn="7700000042", name="ООО «Второй поставщик»", role=OrganisationRole.SUPPLIER)
    postgres_session.add(supplier)
    postgres_session.flush()
    first = postgres_session.scalars(select(Organisation.id).order_by(Organisation.id)).first()
    assert first is not None
    assert first != supplier.id
    return accounts, [supplier.id, first]  # the higher id first: the tie order is by id, not by place


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(account_strategy, min_size=1, max_size=3))
def test_the_database_allocates_as_the_rules_in_python_do(
    postgres_session: Session, town: tuple[list[int], list[int]], accounts: list[Any]
) -> None:
    by_database = _allocated(postgres_session, town, accounts, in_python=False)
    by_python = _allocated(postgres_session, town, accounts, in_python=True)
    assert by_database == by_python


def test_several_payments_of_one_account_take_turns(
    postgres_session: Session, town: tuple[list[int], list[int]]
) -> None:
    """Worked example: April owes 100.00, May 50.00. The first payment (10 June, 120.00) pays
    April and 20.00 of May; the second (12 June, 40.00) finds only 30.00 of May left."""
    account = [
        [
            (date(2026, 4, 1), "heating", 0, Component.PRINCIPAL, 10000, 0),
            (date(2026, 5, 1), "heating", 0, Component.PRINCIPAL, 5000, 0),
        ],
        [(4000, 2, None, []), (12000, 0, None, [])],
    ]
    allocated = _allocated(postgres_session, town, [account], in_python=False)
    assert allocated["parts"] == Counter(
        {
            ("op-0-1", "2026-04-01", "heating", 0, "principal", 10000): 1,
            ("op-0-1", "2026-05-01", "heating", 0, "principal", 2000): 1,
            ("op-0-0", "2026-05-01", "heating", 0, "principal", 3000): 1,
        }
    )
    assert allocated["applied"] == 15000


def test_equal_remainders_go_to_the_debt_listed_first(
    postgres_session: Session, town: tuple[list[int], list[int]]
) -> None:
    """Worked example: April owes 1.00 for hot water and for heating to each of two suppliers.
    A payment of 0.01 gives each a third of a kopeck: 0 and the same remainder, 1/3. The kopeck
    goes to the debt listed first: heating ("heating" < "hot_water"), of the lower supplier id."""
    april = PERIODS[2]
    debts = [
        (april, code, supplier, Component.PRINCIPAL, 100, 0)
        for code, supplier in (("hot_water", 1), ("heating", 0), ("heating", 1))
    ]
    allocated = _allocated(postgres_session, town, [[debts, [(1, 0, None, [])]]], in_python=False)
    lower = min(range(2), key=lambda index: town[1][index])
    assert allocated["parts"] == Counter({("op-0-0", "2026-04-01", "heating", lower, "principal", 1): 1})


def _allocated(
    session: Session, town: tuple[list[int], list[int]], accounts: list[Any], *, in_python: bool
) -> dict[str, Any]:
    """Write the debts, take the payments in (allocated as asked) and read back every allocation
    posting by the payment's external id; everything is rolled back after."""
    with _rolled_back(session):
        account_ids, suppliers = town
        incoming = []
        for index, (debts, payments) in enumerate(accounts):
            _write_debts(session, account_ids[index], suppliers, debts)
            number = session.scalar(select(Account.number).where(Account.id == account_ids[index]))
            for n, (amount, offset, period, named) in enumerate(payments):
                incoming.append(
                    Incoming(f"op-{index}-{n}", amount, date(2026, 6, 10 + offset), number, period, tuple(named))
                )
        allocate = service.allocate_payments_in_python if in_python else service.allocate_payments
        with mock.patch.object(service, "allocate_payments", allocate):
            take_in(session, PaymentSource.CASH_DESK, incoming)
        return _allocations(session, suppliers)


def _write_debts(session: Session, account_id: int, suppliers: list[int], debts: list[Any]) -> None:
    for period, service_code, supplier, component, charged, paid in debts:
        entries = [
            books.receivable(account_id, service_code, suppliers[supplier], period, charged, component),
            books.Entry(Book.ACCRUED, -charged, service=service_code, supplier_id=suppliers[supplier]),
        ]
        if paid:
            entries += [
                books.receivable(account_id, service_code, suppliers[supplier], period, paid, component),
                books.Entry(Book.ACCRUED, -paid, service=service_code, supplier_id=suppliers[supplier]),
            ]
        books.record(session, TransactionKind.ACCRUAL, date(2026, 5, 31), "test", None, "debts", entries)


def _allocations(session: Session, suppliers: list[int]) -> dict[str, Any]:
    rows = session.execute(
        select(Payment.external_id, FinanceTransaction.occurred_on, Posting)
        .join(FinanceTransaction, FinanceTransaction.source_id == Payment.id)
        .join(Posting, Posting.transaction_id == FinanceTransaction.id)
        .where(FinanceTransaction.kind == TransactionKind.ALLOCATION, FinanceTransaction.source == "payment")
    ).all()
    parts: Counter[tuple[Any, ...]] = Counter()
    advances: Counter[tuple[Any, ...]] = Counter()
    for external_id, occurred_on, posting in rows:
        if posting.book == Book.ADVANCE:
            advances[(external_id, str(occurred_on), posting.amount)] += 1
        else:
            assert posting.supplier_id is not None
            assert posting.component is not None
            supplier = suppliers.index(posting.supplier_id)
            key = (
                external_id,
                str(posting.period),
                posting.service,
                supplier,
                posting.component.value,
                -posting.amount,
            )
            parts[key] += 1
    return {"parts": parts, "advances": advances, "applied": sum(key[-1] for key in advances)}


@contextmanager
def _rolled_back(session: Session) -> Iterator[None]:
    savepoint = session.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
