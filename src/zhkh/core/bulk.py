"""Set-based writes: many rows in one statement, COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def bulk_insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts keyed by column name) into ``table`` within the session's
    transaction: COPY on PostgreSQL, a batched executemany elsewhere."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), list(rows))
        return
    columns = list(rows[0].keys())
    processors = [_bind_processor(table, name, connection.dialect) for name in columns]
    column_list = ", ".join(f'"{name}"' for name in columns)
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {_qualified(table)} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    process(row[name]) if process else row[name]
                    for name, process in zip(columns, processors, strict=True)
                ]
            )


def _bind_processor(table: Table, name: str, dialect: Any) -> Any:
    return table.c[name].type.bind_processor(dialect)


def _qualified(table: Table) -> str:
    return f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'


def insert_new_rows(
    session: Session, model: type[Any], rows: Sequence[dict[str, Any]], *, returning: Sequence[Any]
) -> list[Row[Any]]:
    """Insert ``rows`` into ``model``'s table, skipping any that collide with a unique key (a
    row somebody else stored first), and return ``returning`` of the rows actually inserted.
    The basis of idempotent intake: the same message twice is stored once, even from two
    consumers at the same moment."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = dialect_insert(model).on_conflict_do_nothing().returning(*returning)
    return list(session.execute(statement, list(rows)))
