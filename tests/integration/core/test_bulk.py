"""Set-based writes on both engines: what ``copy_rows`` stores and what it refuses."""

from __future__ import annotations

import json
from datetime import date
from typing import cast

import psycopg
import pytest
from sqlalchemy import String, Table, func, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from zhkh.core.bulk import copy_rows, driver_cursor, materialized, planner_settings, reserve_ids
from zhkh.core.clock import utc_now
from zhkh.finance.models import FinanceTransaction, TransactionKind
from zhkh.payments.models import PaymentIntake

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


def test_json_values_are_written_as_the_json_module_would_write_them(session: Session) -> None:
    """The value comes back with non-string keys as strings, on both engines; on PostgreSQL the
    COPY writes the compact text with Cyrillic as it is (SQLite: SQLAlchemy's own serialiser)."""
    table = cast(Table, PaymentIntake.__table__)
    [intake_id] = reserve_ids(session, table, 1)
    counts = {"принято": 3, "reasons": {"нет счёта": [1, 2]}, 7: None, "big": -(10**15)}
    row = (intake_id, "cash_desk", "касса", "0" * 64, counts, utc_now())
    copy_rows(session, table, ("id", "source", "name", "sha256", "counts", "recorded_at"), [row])
    stored = session.scalar(select(func.cast(PaymentIntake.counts, String)).where(PaymentIntake.id == intake_id))
    as_json_writes_it = json.dumps(counts, ensure_ascii=False, separators=(",", ":"))
    if session.get_bind().dialect.name == "postgresql":
        assert stored == as_json_writes_it
    assert session.scalar(select(PaymentIntake.counts).where(PaymentIntake.id == intake_id)) == json.loads(
        as_json_writes_it
    )


def test_a_materialized_query_is_a_table_for_its_block_and_gone_after(session: Session) -> None:
    """The staged rows are the query's, with its bound values; the table is dropped after the
    block, so the next stage of the same name starts empty."""
    first, second = reserve_ids(session, TABLE, 2)
    now = utc_now()
    rows = [
        (first, TransactionKind.PAYMENT, date(2026, 6, 1), "payment", 1, "one", now),
        (second, TransactionKind.PAYMENT, date(2026, 6, 2), "payment", 2, "two", now),
    ]
    copy_rows(session, TABLE, COLUMNS, rows)
    query = select(FinanceTransaction.id, (FinanceTransaction.source_id * 10).label("tenfold")).where(
        FinanceTransaction.id.in_([first, second])
    )
    with materialized(session, "staged_transactions", query) as staged:
        assert sorted(session.execute(select(staged.c.id, staged.c.tenfold))) == [(first, 10), (second, 20)]
    with materialized(session, "staged_transactions", query.where(FinanceTransaction.id == first)) as staged:
        assert session.scalar(select(func.count()).select_from(staged)) == 1


def test_a_query_with_an_unnamed_column_cannot_be_materialized(session: Session) -> None:
    query = select(FinanceTransaction.id, FinanceTransaction.source_id * 10)
    with pytest.raises(ValueError, match="needs a name"), materialized(session, "staged", query):
        pass


def test_planner_settings_hold_for_their_block_and_are_restored_after(postgres_session: Session) -> None:
    with driver_cursor(postgres_session) as cursor:
        cursor.execute("SET LOCAL work_mem = '8MB'")
        with planner_settings(cursor, jit="off", work_mem="64MB"):
            assert cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')").fetchone() == (
                "off",
                "64MB",
            )
        after = cursor.execute("SELECT current_setting('jit'), current_setting('work_mem')").fetchone()
    assert after == ("on", "8MB")
