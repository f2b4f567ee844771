"""The database layer on both engines: migrations match the models, decimals stay exact,
the outbox is transactional."""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhkh.core.batched_keys import is_batched_on
from zhkh.core.outbox import OutboxMessage, emit
from zhkh.core.types import ExactDecimal
from zhkh.schema import METADATA

# Indexes over expressions, which SQLAlchemy cannot reflect on SQLite: checked by name below.
EXPRESSION_INDEXES = {"uq_quarantined_readings_key", "uq_tariffs_key", "uq_norms_key"}


def test_migrations_build_exactly_the_models_schema(engine: Engine) -> None:
    dialect = engine.dialect.name

    def compared(obj: object, name: str | None, type_: str, *_args: object) -> bool:
        if type_ == "index" and name in EXPRESSION_INDEXES:
            return False
        # checked by triggers on PostgreSQL: tests/integration/core/test_batched_keys.py
        return not (type_ == "foreign_key_constraint" and is_batched_on(dialect, name))

    with engine.connect() as connection, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": compared})
        differences = compare_metadata(context, METADATA)
        indexes = {
            index["name"]
            for table in ("quarantined_readings", "tariffs", "norms")
            for index in inspect(connection).get_indexes(table)
        }
    assert differences == []
    if engine.dialect.name == "postgresql":  # SQLite does not report them at all
        assert indexes >= EXPRESSION_INDEXES
    else:
        with engine.connect() as connection:
            names = set(connection.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
        assert names >= EXPRESSION_INDEXES


@pytest.mark.parametrize(
    "value", ["0.1", "123456789012.123456789", "-0.000001", "45.60", "1E+3", "0"], ids=lambda v: f"d{v}"
)
def test_exact_decimal_round_trips(session: Session, value: str) -> None:
    table = Table("decimal_probe", MetaData(), Column("id", Integer, primary_key=True), Column("value", ExactDecimal))
    connection = session.connection()
    table.create(connection)
    connection.execute(table.insert().values(id=1, value=Decimal(value)))
    stored = connection.execute(select(table.c.value)).scalar_one()
    assert isinstance(stored, Decimal)
    assert stored == Decimal(value)
    equal = connection.execute(select(table.c.id).where(table.c.value == Decimal(value).normalize())).scalar()
    assert equal == 1, "an equal decimal in another notation must compare equal in SQL"


def test_exact_decimal_refuses_float(session: Session) -> None:
    table = Table("decimal_probe_f", MetaData(), Column("id", Integer, primary_key=True), Column("value", ExactDecimal))
    connection = session.connection()
    table.create(connection)
    with pytest.raises(Exception, match="refuses float"):
        connection.execute(table.insert().values(id=1, value=0.1))


def test_outbox_message_commits_with_the_fact_and_rolls_back_with_it(session: Session) -> None:
    with session.begin_nested():
        emit(session, "test.kept", {"amount": 100})
    savepoint = session.begin_nested()
    emit(session, "test.dropped", {"amount": 200})
    session.flush()
    savepoint.rollback()
    topics = list(session.scalars(select(OutboxMessage.topic)))
    assert topics == ["test.kept"]
    message = session.scalar(select(OutboxMessage))
    assert message is not None
    assert message.payload == {"amount": 100}
    assert message.delivered_at is None


def test_foreign_keys_are_enforced(session: Session) -> None:
    """SQLite ignores foreign keys unless told; the engine turns them on."""
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO premises (building_id, number, kind, area_m2, meter_possible) "
                "VALUES (999999, '1', 'residential', '1', true)"
            )
        )
