"""Alembic environment: SQLite in batch mode (it cannot ALTER most things), PostgreSQL as is."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from zhkh.core.batched_keys import is_batched_on
from zhkh.core.config import get_settings
from zhkh.core.db import create_db_engine
from zhkh.schema import METADATA


def run_migrations(connection: Connection) -> None:
    dialect = connection.dialect.name

    def include_object(_object: object, name: str | None, type_: str, *_args: object) -> bool:
        # the models declare the batched keys; on PostgreSQL triggers check them instead
        return not (type_ == "foreign_key_constraint" and is_batched_on(dialect, name))

    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=dialect == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # handed in by zhkh.schema.upgrade()
        run_migrations(connection)
        return
    engine = create_db_engine(get_settings().database_url)
    with engine.connect() as connection:
        run_migrations(connection)
        connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_online()
