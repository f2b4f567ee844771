"""Closing a period posts its lines into the books: per account, service and supplier, balanced
against what each supplier accrued. On PostgreSQL the database refuses unbalanced or rewritten
books by itself."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.integration.billing.conftest import MARCH
from zhkh.billing.models import AccrualLine
from zhkh.billing.service import close_period, run_billing
from zhkh.finance.models import Book, FinanceTransaction, Posting, TransactionKind


def test_closing_posts_each_accounts_lines_as_its_receivables(session: Session, march_readings: None) -> None:
    run_billing(session, MARCH)
    assert session.scalar(select(func.count()).select_from(Posting)) == 0  # a draft is not in the books
    close_period(session, MARCH)

    lines = {
        (account, service, supplier): int(amount)
        for account, service, supplier, amount in session.execute(
            select(AccrualLine.account_id, AccrualLine.service, AccrualLine.supplier_id, func.sum(AccrualLine.amount))
            .where(AccrualLine.period == MARCH.first_day)
            .group_by(AccrualLine.account_id, AccrualLine.service, AccrualLine.supplier_id)
        )
    }
    receivables = {
        (p.account_id, p.service, p.supplier_id): p.amount
        for p in session.scalars(select(Posting).where(Posting.book == Book.RECEIVABLE))
    }
    assert receivables == {key: amount for key, amount in lines.items() if amount}
    assert {p.period for p in session.scalars(select(Posting).where(Posting.book == Book.RECEIVABLE))} == {
        MARCH.first_day
    }
    accrued = session.scalar(select(func.sum(Posting.amount)).where(Posting.book == Book.ACCRUED))
    assert accrued == -sum(lines.values())
    transaction = session.scalars(select(FinanceTransaction)).one()
    assert (transaction.kind, transaction.occurred_on) == (TransactionKind.ACCRUAL, MARCH.last_day)


def test_postgresql_refuses_unbalanced_or_rewritten_books(postgres_session: Session) -> None:
    session = postgres_session
    transaction = FinanceTransaction(
        kind=TransactionKind.REMITTANCE, occurred_on=MARCH.first_day, source="test", description="lopsided"
    )
    session.add(transaction)
    session.flush()
    session.add(Posting(transaction_id=transaction.id, book=Book.COLLECTION, amount=100))
    session.flush()
    unbalanced = r"lopsided\) is unbalanced: its postings sum to 100 kopecks"
    with pytest.raises(DBAPIError, match=unbalanced), session.begin_nested():
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    session.add(Posting(transaction_id=transaction.id, book=Book.REMITTED, amount=-100))
    session.flush()
    session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # balanced now: accepted
    with pytest.raises(DBAPIError, match="postings rows are never updated or deleted"), session.begin_nested():
        session.execute(update(Posting).values(amount=200))


def test_postgresql_checks_many_transactions_of_one_statement_at_once(postgres_session: Session) -> None:
    # Migration 0011: one grouped query checks every transaction the database transaction
    # wrote; the error still names the first unbalanced one, and a savepoint rolled back
    # takes its transactions out of the check.
    session = postgres_session
    rows = [
        {"kind": TransactionKind.REMITTANCE, "occurred_on": MARCH.first_day, "source": "test", "description": f"t{n}"}
        for n in range(3)
    ]
    ids = session.scalars(insert(FinanceTransaction).returning(FinanceTransaction.id), rows).all()
    assert len(ids) == 3
    for transaction_id in ids:
        session.add(Posting(transaction_id=transaction_id, book=Book.COLLECTION, amount=100))
        session.add(Posting(transaction_id=transaction_id, book=Book.REMITTED, amount=-100))
    session.add(Posting(transaction_id=ids[1], book=Book.COLLECTION, amount=7))
    session.flush()
    unbalanced = rf"transaction {ids[1]} \(t1\) is unbalanced: its postings sum to 7 kopecks"
    with pytest.raises(DBAPIError, match=unbalanced), session.begin_nested():
        session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    session.add(Posting(transaction_id=ids[1], book=Book.REMITTED, amount=-7))
    session.flush()
    session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # all three balanced now: accepted

    with session.begin_nested() as savepoint:
        lopsided = FinanceTransaction(
            kind=TransactionKind.REMITTANCE, occurred_on=MARCH.first_day, source="test", description="gone"
        )
        session.add(lopsided)
        session.flush()
        session.add(Posting(transaction_id=lopsided.id, book=Book.COLLECTION, amount=5))
        session.flush()
        savepoint.rollback()
    session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))  # the rolled-back one is not checked
