"""the books' balance checked at commit in one query for all the transactions a database
transaction wrote, instead of one SUM per transaction (PostgreSQL)

Migration 0007 checks every finance transaction by a deferred constraint trigger that sums its
postings: at a million payments (two transactions each) that is 34–41 s of the commit
(docs/benchmarks.md). The guarantee stays the same, only the work is set-based:

* after each INSERT statement on ``finance_transactions`` a statement-level trigger notes the
  new ids in a temporary table of the session (``pg_temp.finance_unchecked``, emptied at commit);
* the deferred constraint trigger still fires for each new transaction at commit (or at
  ``SET CONSTRAINTS … IMMEDIATE``). The first firing whose id is still unchecked checks every
  unchecked transaction in one grouped query, raises the same error as before for the first
  unbalanced one, and marks them all checked; every later firing finds its id checked and
  returns after one index probe.

Savepoints keep it right: rolling one back undoes its notes and its marks with its rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTE_NEW = '''
CREATE OR REPLACE FUNCTION finance_transactions_note_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.finance_unchecked') IS NULL THEN
        CREATE TEMPORARY TABLE finance_unchecked (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS;
    END IF;
    INSERT INTO pg_temp.finance_unchecked SELECT id FROM new_transactions;
    RETURN NULL;
END $$
'''

CHECK_ALL = '''
CREATE OR REPLACE FUNCTION finance_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE unbalanced record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_temp.finance_unchecked WHERE id = NEW.id) THEN
        RETURN NULL;  -- checked with the others by an earlier firing
    END IF;
    SELECT t.id, t.description, s.total INTO unbalanced
    FROM (
        SELECT u.id, coalesce(sum(p.amount), 0) AS total
        FROM pg_temp.finance_unchecked u LEFT JOIN postings p ON p.transaction_id = u.id
        GROUP BY u.id
        HAVING coalesce(sum(p.amount), 0) <> 0
        ORDER BY u.id
        LIMIT 1
    ) s JOIN finance_transactions t ON t.id = s.id;
    IF FOUND THEN
        RAISE EXCEPTION 'finance transaction % (%) is unbalanced: its postings sum to % kopecks',
            unbalanced.id, unbalanced.description, unbalanced.total USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM pg_temp.finance_unchecked;
    RETURN NULL;
END $$
'''

NOTE_TRIGGER = '''
CREATE TRIGGER finance_transactions_note_new AFTER INSERT ON finance_transactions
REFERENCING NEW TABLE AS new_transactions FOR EACH STATEMENT EXECUTE FUNCTION finance_transactions_note_new()
'''

# 0007's function, for the downgrade.
CHECK_EACH = '''
CREATE OR REPLACE FUNCTION finance_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE total bigint;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM postings WHERE transaction_id = NEW.id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'finance transaction % (%) is unbalanced: its postings sum to % kopecks',
            NEW.id, NEW.description, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$
'''


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: the service's own check (finance.service) is the only one, as before
    op.execute(NOTE_NEW)
    op.execute(NOTE_TRIGGER)
    op.execute(CHECK_ALL)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(CHECK_EACH)
    op.execute('DROP TRIGGER finance_transactions_note_new ON finance_transactions')
    op.execute('DROP FUNCTION finance_transactions_note_new()')
