"""the foreign keys of meter readings checked once per statement on PostgreSQL instead of once
per row (zhkh.core.batched_keys): a batch of readings is one INSERT of up to 5,000 rows, and
the per-row checks were about a tenth of what PostgreSQL spent storing a reading

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from zhkh.core.batched_keys import BATCHED_KEYS, install, uninstall

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = BATCHED_KEYS[11:14]  # the readings' keys; the trigger functions come from 0010


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite keeps its foreign keys
    for key in KEYS:
        for statement in install(key):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for key in reversed(KEYS):
        for statement in uninstall(key):
            op.execute(statement)
