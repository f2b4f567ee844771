"""Recording transactions in the books. Every transaction is checked to sum to zero here, and on
PostgreSQL once more by a deferred constraint trigger at commit (migration 0007)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Select, Table, func, insert, literal, select
from sqlalchemy.orm import Session

from zhkh.core.bulk import copy_rows
from zhkh.core.errors import DomainError
from zhkh.finance.models import Book, Component, FinanceTransaction, Posting, TransactionKind

POSTING_COLUMNS = ("transaction_id", "book", "account_id", "service", "supplier_id", "period", "component", "amount")


class Unbalanced(DomainError):
    """A transaction whose postings do not sum to zero: a programming error, never user input."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=500)


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting before it is written. ``amount``: kopecks, debit positive, credit negative."""

    book: Book
    amount: int
    account_id: int | None = None
    service: str | None = None
    supplier_id: int | None = None
    period: date | None = None
    component: Component | None = None

    def row(self, transaction_id: int) -> tuple[Any, ...]:
        return (
            transaction_id,
            self.book.value,
            self.account_id,
            self.service,
            self.supplier_id,
            self.period,
            self.component.value if self.component else None,
            self.amount,
        )


def receivable(
    account_id: int, service: str, supplier_id: int, period: date, amount: int, component: Component
) -> Entry:
    return Entry(Book.RECEIVABLE, amount, account_id, service, supplier_id, period, component)


def open_transaction(
    session: Session, kind: TransactionKind, occurred_on: date, source: str, source_id: int | None, description: str
) -> int:
    transaction = FinanceTransaction(
        kind=kind, occurred_on=occurred_on, source=source, source_id=source_id, description=description
    )
    session.add(transaction)
    session.flush()
    return transaction.id


def record(
    session: Session,
    kind: TransactionKind,
    occurred_on: date,
    source: str,
    source_id: int | None,
    description: str,
    entries: Sequence[Entry],
) -> int:
    """Write one transaction and its postings; refuse it unless they sum to zero."""
    check_balanced(entries, description)
    transaction_id = open_transaction(session, kind, occurred_on, source, source_id, description)
    write_entries(session, [entry.row(transaction_id) for entry in entries if entry.amount])
    return transaction_id


def check_balanced(entries: Iterable[Entry], description: str) -> None:
    total = sum(entry.amount for entry in entries)
    if total != 0:
        raise Unbalanced(f"{description}: postings sum to {total} kopecks, not zero")


def write_entries(session: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Postings as tuples in the order of ``POSTING_COLUMNS``; several transactions may share
    one call (the bulk paths). The caller has checked each transaction's balance."""
    if rows:
        copy_rows(session, cast(Table, Posting.__table__), POSTING_COLUMNS, rows)


def record_from_queries(
    session: Session,
    kind: TransactionKind,
    occurred_on: date,
    source: str,
    source_id: int | None,
    description: str,
    queries: Sequence[Select[*tuple[Any, ...]]],
) -> tuple[int, int]:
    """Write one transaction whose postings are computed by the database: each query selects the
    columns of ``POSTING_COLUMNS`` after ``transaction_id`` (book, account_id, service,
    supplier_id, period, component, amount). Set-based, for the millions of postings of a
    period's accruals. Returns the transaction id and the number of postings."""
    transaction_id = open_transaction(session, kind, occurred_on, source, source_id, description)
    for query in queries:
        write_from_query(session, transaction_id, query)
    return transaction_id, check_written_balanced(session, transaction_id, description)


def write_from_query(session: Session, transaction_id: int, query: Select[*tuple[Any, ...]]) -> None:
    """Postings of ``transaction_id`` selected by ``query`` (the columns of ``POSTING_COLUMNS``
    after ``transaction_id``), inserted by the database without a round trip."""
    rows = query.with_only_columns(literal(transaction_id), *query.selected_columns)
    session.execute(insert(cast(Table, Posting.__table__)).from_select(list(POSTING_COLUMNS), rows))


def check_written_balanced(session: Session, transaction_id: int, description: str) -> int:
    """Refuse a transaction written set-based unless its postings sum to zero; their number."""
    total, count = session.execute(
        select(func.coalesce(func.sum(Posting.amount), 0), func.count()).where(Posting.transaction_id == transaction_id)
    ).one()
    if total != 0:
        raise Unbalanced(f"{description}: postings sum to {total} kopecks, not zero")
    return int(count)
