"""the statement-level check of a batched foreign key (zhkh.core.batched_keys) in one pass:
each distinct value is probed and locked once and counted found or not, where the check of
0010 read the values twice and probed them through a hashed IN; about a fifth less of
PostgreSQL's time in the check of a 1,000-reading batch (docs/benchmarks.md, 2026-12-07)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 13:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from zhkh.core.batched_keys import FUNCTIONS

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSERTED = FUNCTIONS[0]  # the live text; downgrade puts back the text of 0010's time
assert 'batched_key_inserted()' in INSERTED

PREVIOUS_INSERTED = r"""
CREATE OR REPLACE FUNCTION batched_key_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    present bigint;
    example text;
BEGIN
    EXECUTE format(
        'WITH wanted AS (SELECT DISTINCT %1$I AS id FROM new_rows WHERE %1$I IS NOT NULL), '
        'present AS (SELECT id FROM %2$I WHERE id IN (SELECT id FROM wanted) FOR KEY SHARE) '
        'SELECT (SELECT count(*) FROM wanted), (SELECT count(*) FROM present)',
        TG_ARGV[0], TG_ARGV[1]) INTO wanted, present;
    IF wanted <> present THEN
        EXECUTE format(
            'SELECT min(n.%1$I)::text FROM new_rows n '
            'WHERE n.%1$I IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.id = n.%1$I)',
            TG_ARGV[0], TG_ARGV[1]) INTO example;
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"',
            TG_TABLE_NAME, TG_ARGV[2]
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[2], TABLE = TG_TABLE_NAME,
                DETAIL = format('Key (%s)=(%s) is not present in table "%s" (%s such keys in the statement).',
                    TG_ARGV[0], example, TG_ARGV[1], wanted - present);
    END IF;
    RETURN NULL;
END $$

"""


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':  # SQLite keeps its foreign keys
        op.execute(INSERTED)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(PREVIOUS_INSERTED)
