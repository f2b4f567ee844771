"""metering: meters, devices, readings, consumption; resident tokens; reading windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 07:24:53.432053
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import zhkh.core.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transport', sa.String(length=20), nullable=False),
    sa.Column('topic', sa.String(length=500), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters'))
    )
    op.create_table('device_models',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('mapping', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_models')),
    sa.UniqueConstraint('name', name=op.f('uq_device_models_name'))
    )
    op.create_table('flow_limits',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('service', sa.Enum('cold_water', 'hot_water', 'electricity', 'heating', 'gas', name='flow_limit_service', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('diameter_mm', sa.SmallInteger(), nullable=True),
    sa.Column('max_per_hour', zhkh.core.types.ExactDecimal(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_limits')),
    sa.UniqueConstraint('service', 'diameter_mm', name=op.f('uq_flow_limits_service_diameter_mm'))
    )
    op.create_table('devices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('model_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('secret_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['device_models.id'], name=op.f('fk_devices_model_id_device_models')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_devices')),
    sa.UniqueConstraint('format', 'external_id', name=op.f('uq_devices_format_external_id'))
    )
    op.create_table('meters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=False),
    sa.Column('service', sa.Enum('cold_water', 'hot_water', 'electricity', 'heating', 'gas', name='meter_service', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('scope', sa.Enum('individual', 'building', name='meter_scope', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('building_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('zones', sa.SmallInteger(), nullable=False),
    sa.Column('digits', sa.SmallInteger(), nullable=False),
    sa.Column('diameter_mm', sa.SmallInteger(), nullable=True),
    sa.Column('installed_on', sa.Date(), nullable=False),
    sa.Column('verified_until', sa.Date(), nullable=True),
    sa.Column('seal', sa.String(length=64), nullable=True),
    sa.Column('archived_on', sa.Date(), nullable=True),
    sa.Column('replaced_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('automatic', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("(scope = 'individual') = (account_id IS NOT NULL)", name=op.f('ck_meters_account_iff_individual')),
    sa.CheckConstraint('digits BETWEEN 1 AND 12', name=op.f('ck_meters_digits_in_range')),
    sa.CheckConstraint('zones BETWEEN 1 AND 3', name=op.f('ck_meters_zones_1_to_3')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_meters_account_id_accounts')),
    sa.ForeignKeyConstraint(['building_id'], ['buildings.id'], name=op.f('fk_meters_building_id_buildings')),
    sa.ForeignKeyConstraint(['replaced_by_id'], ['meters.id'], name=op.f('fk_meters_replaced_by_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meters')),
    sa.UniqueConstraint('serial', name=op.f('uq_meters_serial'))
    )
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meters_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meters_building_id'), ['building_id'], unique=False)

    op.create_table('consumption',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('meter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('zone', sa.SmallInteger(), nullable=False),
    sa.Column('period', sa.Date(), nullable=False),
    sa.Column('provenance', sa.Enum('reading', 'interpolated', 'missing', name='consumption_provenance', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('start_value', zhkh.core.types.ExactDecimal(), nullable=True),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_value', zhkh.core.types.ExactDecimal(), nullable=True),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('volume', zhkh.core.types.ExactDecimal(), nullable=True),
    sa.Column('computed_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_consumption_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consumption')),
    sa.UniqueConstraint('meter_id', 'zone', 'period', name=op.f('uq_consumption_meter_id_zone_period'))
    )
    with op.batch_alter_table('consumption', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consumption_period'), ['period'], unique=False)

    op.create_table('device_bindings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('device_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('meter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('zone', sa.SmallInteger(), server_default='1', nullable=False),
    sa.Column('bound_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bound_to', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_device_bindings_device_id_devices')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_device_bindings_meter_id_meters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device_bindings'))
    )
    with op.batch_alter_table('device_bindings', schema=None) as batch_op:
        batch_op.create_index('ix_device_bindings_device_channel', ['device_id', 'channel'], unique=False)
        batch_op.create_index(batch_op.f('ix_device_bindings_meter_id'), ['meter_id'], unique=False)

    op.create_table('readings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('meter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('zone', sa.SmallInteger(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', zhkh.core.types.ExactDecimal(), nullable=False),
    sa.Column('status', sa.Enum('accepted', 'rejected', name='reading_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('flags', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('corrects_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('superseded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['corrects_id'], ['readings.id'], name=op.f('fk_readings_corrects_id_readings')),
    sa.ForeignKeyConstraint(['meter_id'], ['meters.id'], name=op.f('fk_readings_meter_id_meters')),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['readings.id'], name=op.f('fk_readings_superseded_by_id_readings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_readings')),
    )
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.create_index(
            'uq_readings_original',
            ['meter_id', 'zone', 'taken_at', 'value'],
            unique=True,
            postgresql_where=sa.text("corrects_id IS NULL"),
            sqlite_where=sa.text("corrects_id IS NULL"),
        )
        batch_op.create_index(
            'ix_readings_live',
            ['meter_id', 'zone', 'taken_at'],
            unique=False,
            postgresql_where=sa.text("status = 'accepted' AND superseded_by_id IS NULL"),
            sqlite_where=sa.text("status = 'accepted' AND superseded_by_id IS NULL"),
        )

    op.create_table('quarantined_readings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('serial', sa.String(length=64), nullable=True),
    sa.Column('device_format', sa.String(length=32), nullable=True),
    sa.Column('device_id', sa.String(length=100), nullable=True),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('zone', sa.SmallInteger(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', zhkh.core.types.ExactDecimal(), nullable=False),
    sa.Column('source', sa.String(length=40), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('resolved_reading_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['resolved_reading_id'], ['readings.id'], name=op.f('fk_quarantined_readings_resolved_reading_id_readings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_readings'))
    )
    with op.batch_alter_table('quarantined_readings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_readings_reason'), ['reason'], unique=False)

    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=100), nullable=True))

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reading_window_from', sa.SmallInteger(), server_default='15', nullable=False))
        batch_op.add_column(sa.Column('reading_window_to', sa.SmallInteger(), server_default='25', nullable=False))

    # Default physical limits, from the meters' passports: Qmax of a DN15 water meter (Q3 = 2.5 m3/h)
    # is 3.125 m3/h, of a DN20 5 m3/h; G4 gas meters 6 m3/h; a flat's connection about 15 kW.
    # A row without a diameter is the service's default for individual meters; a building meter is
    # checked only against a row for its own diameter. Operators change them in this table.
    flow_limits = sa.table(
        'flow_limits', sa.column('service', sa.String), sa.column('diameter_mm', sa.SmallInteger),
        sa.column('max_per_hour', zhkh.core.types.ExactDecimal),
    )
    op.bulk_insert(flow_limits, [
        {'service': 'cold_water', 'diameter_mm': None, 'max_per_hour': Decimal('3.125')},
        {'service': 'cold_water', 'diameter_mm': 15, 'max_per_hour': Decimal('3.125')},
        {'service': 'cold_water', 'diameter_mm': 20, 'max_per_hour': Decimal('5')},
        {'service': 'hot_water', 'diameter_mm': None, 'max_per_hour': Decimal('3.125')},
        {'service': 'hot_water', 'diameter_mm': 15, 'max_per_hour': Decimal('3.125')},
        {'service': 'hot_water', 'diameter_mm': 20, 'max_per_hour': Decimal('5')},
        {'service': 'electricity', 'diameter_mm': None, 'max_per_hour': Decimal('15')},
        {'service': 'gas', 'diameter_mm': None, 'max_per_hour': Decimal('6')},
        {'service': 'heating', 'diameter_mm': None, 'max_per_hour': Decimal('0.05')},
    ])



def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('subject')

    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('reading_window_to')
        batch_op.drop_column('reading_window_from')

    with op.batch_alter_table('quarantined_readings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_readings_reason'))

    op.drop_table('quarantined_readings')
    with op.batch_alter_table('readings', schema=None) as batch_op:
        batch_op.drop_index('ix_readings_live')
        batch_op.drop_index('uq_readings_original')

    op.drop_table('readings')
    with op.batch_alter_table('device_bindings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_bindings_meter_id'))
        batch_op.drop_index('ix_device_bindings_device_channel')

    op.drop_table('device_bindings')
    with op.batch_alter_table('consumption', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consumption_period'))

    op.drop_table('consumption')
    with op.batch_alter_table('meters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meters_building_id'))
        batch_op.drop_index(batch_op.f('ix_meters_account_id'))

    op.drop_table('meters')
    op.drop_table('devices')
    op.drop_table('flow_limits')
    op.drop_table('device_models')
    op.drop_table('dead_letters')
