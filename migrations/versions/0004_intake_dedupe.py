"""intake: a quarantined reading and a dead letter are stored once

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:40:00
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import zhkh.core.types

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUARANTINE_KEY = [
    sa.text("coalesce(serial, '')"),
    sa.text("coalesce(device_format, '')"),
    sa.text("coalesce(device_id, '')"),
    sa.text("coalesce(channel, '')"),
    sa.text("zone"),
    sa.text("taken_at"),
    sa.text("value"),
]


def upgrade() -> None:
    with op.batch_alter_table('quarantined_readings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_at', zhkh.core.types.UtcDateTime(), nullable=True))
    # Earlier copies of one quarantined reading: keep the first.
    op.execute(
        "DELETE FROM quarantined_readings WHERE id NOT IN (SELECT min(id) FROM quarantined_readings GROUP BY "
        "coalesce(serial, ''), coalesce(device_format, ''), coalesce(device_id, ''), coalesce(channel, ''), "
        "zone, taken_at, value)"
    )
    op.execute("UPDATE quarantined_readings SET resolved_at = received_at WHERE resolved_reading_id IS NOT NULL")
    op.create_index('uq_quarantined_readings_key', 'quarantined_readings', QUARANTINE_KEY, unique=True)

    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('occurrences', sa.SmallInteger(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('last_received_at', zhkh.core.types.UtcDateTime(), nullable=True))
    connection = op.get_bind()
    letters = sa.table('dead_letters', sa.column('id'), sa.column('payload'), sa.column('payload_sha256'))
    for letter_id, payload in connection.execute(sa.select(letters.c.id, letters.c.payload)).all():
        digest = hashlib.sha256(bytes(payload)).hexdigest()
        connection.execute(letters.update().where(letters.c.id == letter_id).values(payload_sha256=digest))
    op.execute(
        "DELETE FROM dead_letters WHERE id NOT IN (SELECT min(id) FROM dead_letters "
        "GROUP BY transport, topic, payload_sha256)"
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_dead_letters_message', ['transport', 'topic', 'payload_sha256'])


def downgrade() -> None:
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_constraint('uq_dead_letters_message', type_='unique')
        batch_op.drop_column('last_received_at')
        batch_op.drop_column('occurrences')
        batch_op.drop_column('payload_sha256')
    op.drop_index('uq_quarantined_readings_key', table_name='quarantined_readings')
    with op.batch_alter_table('quarantined_readings', schema=None) as batch_op:
        batch_op.drop_column('resolved_at')
