"""consumption: an index on (period, meter_id) instead of period alone, so SQLite joins a
period's meters to their consumption by both

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 17:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('consumption', schema=None) as batch_op:
        batch_op.drop_index('ix_consumption_period')
        batch_op.create_index('ix_consumption_period_meter', ['period', 'meter_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('consumption', schema=None) as batch_op:
        batch_op.drop_index('ix_consumption_period_meter')
        batch_op.create_index('ix_consumption_period', ['period'], unique=False)
