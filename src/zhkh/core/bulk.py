"""Set-based writes: many rows in one statement, COPY on PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import orjson
import psycopg
from psycopg.copy import FileWriter
from sqlalchemy import (
    JSON,
    Column,
    Enum,
    MetaData,
    Row,
    Select,
    Table,
    TableClause,
    column,
    func,
    insert,
    select,
    table,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from zhkh.core.types import ExactDecimal, UtcDateTime


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
    copy_rows(session, table, columns, ([row[name] for name in columns] for row in rows))


def copy_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``: COPY on PostgreSQL,
    converting only the columns that need it (JSON); a batched executemany elsewhere. For the
    millions of rows of a billing run, where building a dict per row costs as much as the COPY."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        batch = [dict(zip(columns, row, strict=True)) for row in rows]
        if batch:
            connection.execute(insert(table), batch)
        return len(batch)
    with driver_cursor(session) as cursor, cursor.copy(_copy_statement(table, columns)) as copy:
        return _write_rows(copy, _converters(table, columns, connection.dialect), rows)


def encode_copy_rows(session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """``rows`` as ``copy_rows`` would send them, encoded (PostgreSQL's text COPY format) but not
    sent, for ``copy_encoded`` on another connection: a worker process prepares the rows that the
    transaction of the process it works for writes. The session's connection only lends its
    adaptation of types; nothing is sent to the server."""
    connection = session.connection()
    buffer = io.BytesIO()
    with driver_cursor(session) as cursor, psycopg.Copy(cursor, binary=False, writer=FileWriter(buffer)) as copy:
        _write_rows(copy, _converters(table, columns, connection.dialect), rows)
    return buffer.getvalue()


def copy_encoded(session: Session, table: Table, columns: Sequence[str], data: bytes) -> None:
    """Insert the rows that ``encode_copy_rows`` encoded for the same ``table`` and ``columns``."""
    if not data:
        return
    with driver_cursor(session) as cursor, cursor.copy(_copy_statement(table, columns)) as copy:
        copy.write(data)


def driver_cursor(session: Session) -> psycopg.Cursor[Any]:
    """A cursor of the session's psycopg connection (PostgreSQL), for COPY and for statements
    whose rows need no SQLAlchemy processing: plain tuples, no Row object per row."""
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    return raw.cursor()


@contextmanager
def planner_settings(cursor: psycopg.Cursor[Any], **settings: str) -> Iterator[None]:
    """PostgreSQL settings for the statements of the block, as ``SET LOCAL`` would give them,
    and back to what they were after it, so the rest of the caller's transaction is planned as
    before. For bulk statements a setting is known to suit (see the callers' reasons)."""
    before = {name: _set_local(cursor, name, value) for name, value in settings.items()}
    try:
        yield
    finally:
        for name, value in before.items():
            _set_local(cursor, name, value)


def _set_local(cursor: psycopg.Cursor[Any], name: str, value: str) -> str:
    """Set ``name`` for the rest of the transaction; returns its value before."""
    row = cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value]).fetchone()
    assert row is not None
    return str(row[0])


def _copy_statement(table: Table, columns: Sequence[str]) -> str:
    column_list = ", ".join(f'"{name}"' for name in columns)
    return f"COPY {_qualified(table)} ({column_list}) FROM STDIN"


def _converters(table: Table, columns: Sequence[str], dialect: Any) -> list[tuple[int, Any]]:
    """(position, processor) of the columns whose values need converting before COPY."""
    return [
        (index, process)
        for index, name in enumerate(columns)
        if (process := _bind_processor(table, name, dialect)) is not None
    ]


def _write_rows(copy: psycopg.Copy, converted: list[tuple[int, Any]], rows: Iterable[Sequence[Any]]) -> int:
    count = 0
    for row in rows:
        if converted:
            row = list(row)
            for index, process in converted:
                row[index] = process(row[index])
        copy.write_row(row)
        count += 1
    return count


def _bind_processor(table: Table, name: str, dialect: Any) -> Any:
    """What must happen to a value before COPY. Decimals and aware datetimes go as they are
    (psycopg writes them exactly, and the exact types only normalise for SQLite); JSON and the
    like need their processor."""
    column_type = table.c[name].type
    if isinstance(column_type, ExactDecimal | UtcDateTime):
        return None
    if isinstance(column_type, Enum) and _stores_values(column_type):
        # A StrEnum member is its value as text, and a wrong string is refused by the column's
        # CHECK constraint: no processor call for each of millions of postings.
        return None
    if isinstance(column_type, JSON):
        # COPY takes text; the driver's JSON adaptation applies to bound parameters only.
        return _json_text
    return column_type.bind_processor(dialect)


def _stores_values(column_type: Enum) -> bool:
    """Whether the column holds the values of a StrEnum (``core.models.string_enum``)."""
    enum = column_type.enum_class
    return (
        enum is not None
        and issubclass(enum, StrEnum)
        and list(column_type.enums) == [member.value for member in enum]
        and column_type.create_constraint
    )


def _json_text(value: Any) -> str | None:
    """The compact JSON text ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``
    gives, by orjson at a fifth of the time (a billing run serialises a line's inputs 8 million
    times). As with ``json``, non-string keys become strings."""
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


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
    if session.get_bind().dialect.name == "postgresql":
        return _copy_then_insert(session, model.__table__, rows, returning)
    statement = sqlite.insert(model).on_conflict_do_nothing().returning(*returning)
    return list(session.execute(statement, list(rows)))


def _copy_then_insert(
    session: Session, table: Table, rows: Sequence[dict[str, Any]], returning: Sequence[Any]
) -> list[Row[Any]]:
    """PostgreSQL: COPY into a temporary table shaped like ``table``, then one INSERT ... SELECT
    ... ON CONFLICT DO NOTHING. A multi-row VALUES statement is built and parsed in Python,
    which costs more than the database's own work once batches reach thousands of rows."""
    columns = list(rows[0].keys())
    scratch = Table(
        f"new_{table.name}", MetaData(), *(Column(c, table.c[c].type) for c in columns), prefixes=["TEMPORARY"]
    )
    connection = session.connection()
    column_list = ", ".join(f'"{c}"' for c in columns)
    connection.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{scratch.name}" ON COMMIT DROP AS '
        f"SELECT {column_list} FROM {_qualified(table)} WITH NO DATA"
    )
    connection.exec_driver_sql(f'DELETE FROM "{scratch.name}"')
    bulk_insert(session, scratch, rows)
    statement = (
        postgresql.insert(table)
        .from_select(columns, select(*(scratch.c[c] for c in columns)))
        .on_conflict_do_nothing()
        .returning(*returning)
    )
    return list(session.execute(statement))


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh primary keys of ``table``, so that rows which reference each other (a
    transaction and its postings) can be written by COPY without a round trip per row. On
    PostgreSQL they come from the table's sequence; SQLite has a single writer, and the caller
    holds its write lock once it has written anything, so the next ids after the largest are
    free."""
    if count <= 0:
        return []
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        sequence = connection.exec_driver_sql(f"SELECT pg_get_serial_sequence('{_qualified(table)}', 'id')").scalar()
        return list(
            connection.exec_driver_sql(
                f"SELECT nextval('{sequence}') FROM generate_series(1, %(count)s)", {"count": count}
            ).scalars()
        )
    session.flush()
    largest = connection.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(largest + 1, largest + 1 + count))


class _CreateTemporaryTableAs(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, name: str, query: Select[*tuple[Any, ...]]) -> None:
        self.name, self.query = name, query


@compiles(_CreateTemporaryTableAs)
def _create_temporary_table_as(element: _CreateTemporaryTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    return f'CREATE TEMPORARY TABLE "{element.name}" AS {compiler.process(element.query, **kw)}'


@contextmanager
def materialized(session: Session, name: str, query: Select[*tuple[Any, ...]]) -> Iterator[TableClause]:
    """The rows of ``query`` in a temporary table ``name``, analysed on PostgreSQL, for the
    block to select from; dropped after it (after an error the caller's rollback drops it). Two
    reasons to stage a big intermediate result this way on PostgreSQL: CREATE TABLE AS runs its
    query with parallel workers, which INSERT … SELECT never gets (PostgreSQL 15), and queries
    reading an analysed table are planned on its real row count, not on an estimate of an
    aggregate's output."""
    columns = [(c.key, c.type) for c in query.selected_columns]
    if any(key is None for key, _ in columns):
        raise ValueError(f"every column of the query staged as {name} needs a name (label it)")
    session.execute(_CreateTemporaryTableAs(name, query))
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f'ANALYZE "{name}"'))
    yield table(name, *(column(str(key), type_) for key, type_ in columns))
    session.execute(text(f'DROP TABLE "{name}"'))
