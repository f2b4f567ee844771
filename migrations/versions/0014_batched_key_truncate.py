"""a TRUNCATE of a table referenced by a batched foreign key (zhkh.core.batched_keys) is
refused while the referencing table still has references, as PostgreSQL refuses it for a
constraint: before, ``TRUNCATE meters`` would have left every reading pointing nowhere

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 16:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from zhkh.core.batched_keys import (
    BATCHED_KEYS,
    DROP_TRUNCATE_FUNCTION,
    TRUNCATE_FUNCTION,
    guard_truncate,
    unguard_truncate,
)

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite keeps its foreign keys
    op.execute(TRUNCATE_FUNCTION)
    for key in BATCHED_KEYS:
        op.execute(guard_truncate(key))


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for key in reversed(BATCHED_KEYS):
        op.execute(unguard_truncate(key))
    op.execute(DROP_TRUNCATE_FUNCTION)
