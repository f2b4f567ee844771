"""Set-based writes on both engines: what ``copy_rows`` stores and what it refuses."""

from __future__ import annotations

from datetime import date
from typing import cast

import psycopg
import pytest
from sqlalchemy import Table, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from zhkh.core.bulk import copy_rows, reserve_ids
from zhkh.core.clock import utc_now
from zhkh.finance.models import FinanceTransaction, TransactionKind

TABLE = cast(Table, FinanceTransaction.__table__)
COLUMNS = ("id", "kind", "occurred_on", "source", "source_id", "description", "recorded_at")


def test_enum_columns_take_members_and_their_values(session: Session) -> None:
    first, second = reserve_ids(session, TABLE, 2)
    now = utc_now()
    rows = [
        (first, TransactionKind.PAYMENT, date(2026, 6, 1), "payment", 1, "a member", now),
        (second, "allocation", date(2026, 6, 1), "payment", 1, "its value as text", now),
    ]
    assert copy_rows(session, TABLE, COLUMNS, rows) == 2
    query = select(FinanceTransaction.id, FinanceTransaction.kind).where(FinanceTransaction.id.in_([first, second]))
    kinds = {row.id: row.kind for row in session.execute(query)}
    assert kinds == {first: TransactionKind.PAYMENT, second: TransactionKind.ALLOCATION}


def test_a_string_that_is_no_value_of_the_enum_is_refused(session: Session) -> None:
    [transaction_id] = reserve_ids(session, TABLE, 1)
    row = (transaction_id, "gift", date(2026, 6, 1), "payment", 1, "not a kind of transaction", utc_now())
    # PostgreSQL: the column's CHECK constraint refuses the COPY; SQLite: SQLAlchemy's enum type.
    with pytest.raises((psycopg.errors.CheckViolation, StatementError), match=r"gift|ck_finance_transactions"):
        copy_rows(session, TABLE, COLUMNS, [row])
