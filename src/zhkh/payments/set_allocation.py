"""Allocation of recorded payments by the database (PostgreSQL), set-based: the rules of
``payments.allocation`` as SQL over a whole chunk of payments, with no debt travelling to Python.

``allocation.allocate_payment`` stays the definition; this is the same result, posting by
posting (tests/integration/payments/test_set_allocation.py compares the two on random books).
What makes the rules one statement:

- Each debt falls in exactly one *group* of a payment: (phase, period), taken in that order.
  Phase 0 is the principal the payment names (its period and/or services), phase 1 the rest of
  the principal, phase 2 the penalties. In ``allocate_payment`` a named debt is offered again
  with the rest of the principal, but only what the named phase left unpaid of it, and money is
  left after the named phase only when every named debt is paid in full: so it never gets a
  second part, and the groups are disjoint.
- A group gets ``min(owed in the group, what the payment has left after the groups before)``:
  a running sum over the groups in order.
- A group it does not cover in full is split by the largest remainder (``core.money.allocate``):
  each debt the floor of ``money × owed / group owed``, the kopecks left over one each to the
  largest remainders, ties to the debt listed first (service, supplier, component; by code
  point, hence ``COLLATE "C"``).
- Several payments of one account in a chunk take turns (*rounds*: the account's first payment
  by day and id, then its second, ...), each round reading the debts the one before left, as
  the Python path applies them one after another.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from zhkh.core.bulk import driver_cursor, planner_settings
from zhkh.core.clock import utc_now
from zhkh.finance.models import Book, Component, TransactionKind

# Payments allocated by one set of statements. Their accounts' debts are read through the
# account index, so a chunk is a small share of the books however large they are.
CHUNK = 50_000

_PRINCIPAL, _PENALTY = Component.PRINCIPAL.value, Component.PENALTY.value
_RECEIVABLE, _ADVANCE = Book.RECEIVABLE.value, Book.ADVANCE.value

_STAGE_PAYMENTS = """
CREATE TEMPORARY TABLE allocating AS
SELECT id AS payment_id, account_id, amount, paid_on, period,
       CASE WHEN json_typeof(services::json) = 'array'
            THEN ARRAY(SELECT json_array_elements_text(services::json)) END AS services,
       row_number() OVER (PARTITION BY account_id ORDER BY paid_on, id) AS round
FROM payments WHERE id = ANY(%(ids)s)
"""

# Every account of the chunk locked, in id order against deadlocks, as the Python path does:
# an allocation reads the debts and the advance it then changes.
_LOCK_ACCOUNTS = """
SELECT id FROM accounts WHERE id IN (SELECT account_id FROM allocating) ORDER BY id FOR UPDATE
"""

_PARTS_OF_ROUND = f"""
CREATE TEMPORARY TABLE allocation_parts AS
WITH paying AS (
    SELECT payment_id, account_id, amount, paid_on, period, services,
           period IS NOT NULL OR coalesce(cardinality(services), 0) > 0 AS names_debts
    FROM allocating WHERE round = %(round)s
), debts AS (
    SELECT p.account_id, p.period, p.service, p.supplier_id, p.component, sum(p.amount)::bigint AS owed
    FROM postings p
    WHERE p.book = '{_RECEIVABLE}' AND p.account_id IN (SELECT account_id FROM paying)
    GROUP BY p.account_id, p.period, p.service, p.supplier_id, p.component
    HAVING sum(p.amount) > 0
), phased AS (
    SELECT a.payment_id, a.account_id, a.amount, a.paid_on, d.period, d.service, d.supplier_id,
           d.component, d.owed,
           CASE WHEN d.component = '{_PENALTY}' THEN 2
                WHEN a.names_debts AND d.period = coalesce(a.period, d.period)
                     AND (coalesce(cardinality(a.services), 0) = 0 OR d.service = ANY(a.services)) THEN 0
                ELSE 1 END AS phase
    FROM paying a JOIN debts d ON d.account_id = a.account_id
), funded AS (
    SELECT f.*,
           greatest(0, least(f.amount - (f.owed_through - f.group_owed), f.group_owed)) AS money
    FROM (
        SELECT ph.*,
               sum(owed) OVER (PARTITION BY payment_id, phase, period)::bigint AS group_owed,
               -- Through this group: RANGE takes the group's peers (same phase and period) whole.
               sum(owed) OVER (PARTITION BY payment_id ORDER BY phase, period
                               RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)::bigint AS owed_through
        FROM phased ph
    ) f
), split AS (
    -- numeric: money × owed may pass the range of bigint.
    SELECT s.*,
           CASE WHEN money = group_owed THEN owed
                ELSE div(money::numeric * owed, group_owed)::bigint END AS floor_share,
           CASE WHEN money = group_owed THEN 0
                ELSE mod(money::numeric * owed, group_owed) END AS remainder
    FROM funded s WHERE money > 0
), ranked AS (
    SELECT r.*,
           r.money - sum(r.floor_share) OVER (PARTITION BY payment_id, phase, period)::bigint AS leftover,
           row_number() OVER (PARTITION BY payment_id, phase, period
                              ORDER BY remainder DESC, service COLLATE "C", supplier_id, component COLLATE "C") AS place
    FROM split r
)
SELECT payment_id, account_id, paid_on, period, service, supplier_id, component,
       floor_share + CASE WHEN place <= leftover THEN 1 ELSE 0 END AS share
FROM ranked
WHERE floor_share + CASE WHEN place <= leftover THEN 1 ELSE 0 END > 0
"""

# One ``allocation`` transaction per payment that paid something, its id drawn here so that the
# transaction and its postings are written by two plain INSERT … SELECT.
_TRANSACTIONS_OF_ROUND = """
CREATE TEMPORARY TABLE allocated AS
SELECT payment_id, account_id, paid_on, allocated,
       nextval(pg_get_serial_sequence('finance_transactions', 'id')) AS transaction_id
FROM (SELECT payment_id, account_id, paid_on, sum(share)::bigint AS allocated
      FROM allocation_parts GROUP BY payment_id, account_id, paid_on ORDER BY paid_on, payment_id) paid
"""

_WRITE_TRANSACTIONS = f"""
INSERT INTO finance_transactions (id, kind, occurred_on, source, source_id, description, recorded_at)
SELECT transaction_id, '{TransactionKind.ALLOCATION.value}', paid_on, 'payment', payment_id,
       'allocation of payment ' || payment_id, %(now)s
FROM allocated
"""

# The account's advance gives what was allocated (+), each receivable paid takes its part (−).
_WRITE_POSTINGS = f"""
INSERT INTO postings (transaction_id, book, account_id, service, supplier_id, period, component, amount)
SELECT transaction_id, '{_ADVANCE}', account_id, NULL, NULL, NULL, NULL, allocated FROM allocated
UNION ALL
SELECT a.transaction_id, '{_RECEIVABLE}', p.account_id, p.service, p.supplier_id, p.period, p.component, -p.share
FROM allocation_parts p JOIN allocated a ON a.payment_id = p.payment_id
"""


def allocate_payments(session: Session, payment_ids: Sequence[int]) -> tuple[int, list[int]]:
    """Allocate these recorded payments to their accounts' debts in the caller's transaction;
    returns the kopecks applied and the ids of the ``allocation`` transactions written (for the
    caller's announcement)."""
    applied, transaction_ids = 0, []
    for start in range(0, len(payment_ids), CHUNK):
        chunk_applied, chunk_transactions = _allocate_chunk(session, list(payment_ids[start : start + CHUNK]))
        applied += chunk_applied
        transaction_ids.extend(chunk_transactions)
    return applied, transaction_ids


def _allocate_chunk(session: Session, payment_ids: list[int]) -> tuple[int, list[int]]:
    applied, transaction_ids = 0, []
    now = utc_now()
    # No JIT: compiling the parts' statement took 1.0 of its 3.6 s a chunk of 50,000, and the
    # insert's 0.2 of 2.5 s. Sorts and aggregates of a chunk (tens of MB) fit in memory.
    with driver_cursor(session) as cursor, planner_settings(cursor, jit="off", work_mem="64MB"):
        rounds = _stage_payments(cursor, payment_ids)
        for round_number in range(1, rounds + 1):
            _stage_parts(cursor, round_number)
            for transaction_id, allocated in _write_round(cursor, now):
                transaction_ids.append(transaction_id)
                applied += allocated
        cursor.execute("DROP TABLE allocating")
    return applied, transaction_ids


def _stage_payments(cursor: psycopg.Cursor[Any], payment_ids: list[int]) -> int:
    """Stage the chunk's payments with their rounds and lock their accounts; returns the
    number of rounds."""
    cursor.execute(_STAGE_PAYMENTS, {"ids": payment_ids})
    cursor.execute("ANALYZE allocating")
    cursor.execute(_LOCK_ACCOUNTS)
    return int(cursor.execute("SELECT coalesce(max(round), 0) FROM allocating").fetchall()[0][0])


def _stage_parts(cursor: psycopg.Cursor[Any], round_number: int) -> None:
    cursor.execute(_PARTS_OF_ROUND, {"round": round_number})


def _write_round(cursor: psycopg.Cursor[Any], now: datetime) -> list[tuple[int, int]]:
    """Write the round's transactions and postings; returns (transaction id, kopecks allocated)."""
    cursor.execute(_TRANSACTIONS_OF_ROUND)
    cursor.execute(_WRITE_TRANSACTIONS, {"now": now})
    cursor.execute(_WRITE_POSTINGS)
    written = cursor.execute("SELECT transaction_id, allocated FROM allocated ORDER BY transaction_id").fetchall()
    cursor.execute("DROP TABLE allocation_parts, allocated")
    return written
