"""the foreign keys of the bulk paths (postings, accrual lines, billed accounts, payments)
checked once per statement on PostgreSQL instead of once per row (zhkh.core.batched_keys)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from zhkh.core.batched_keys import BATCHED_KEYS, DROP_FUNCTIONS, FUNCTIONS, install, uninstall

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = BATCHED_KEYS[:11]  # the keys of this revision; a later one installs the keys it adds


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite keeps its foreign keys
    for statement in FUNCTIONS:
        op.execute(statement)
    for key in KEYS:
        for statement in install(key):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for key in KEYS:
        for statement in uninstall(key):
            op.execute(statement)
    for statement in DROP_FUNCTIONS:
        op.execute(statement)
