"""The all-or-nothing, streaming import of a table into the database.

Rows are parsed in chunks and copied into a temporary staging table; checks that need the
database (unknown references, duplicates within the file) are then single set-based queries over
that table, and the merge into the real tables is a handful of INSERT ... SELECT and
UPDATE ... FROM statements. Memory stays bounded whatever the file size, and nothing is written
to the real tables unless every row is valid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    and_,
    case,
    func,
    insert,
    not_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from zhkh.core.bulk import bulk_insert
from zhkh.core.errors import DomainError, Problem, ProblemsFound
from zhkh.core.tabular import FileRejected, TableReader, TableSpec

CHUNK_ROWS = 20_000


class RowError(ValueError):
    """A row that cannot be accepted; ``column`` names the culprit when there is one."""

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column

    def __str__(self) -> str:
        message = super().__str__()
        return f"{self.column}: {message}" if self.column else message


@dataclass
class ImportSummary:
    what: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def changed_anything(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def describe(self) -> str:
        parts = [f"{self.created} created", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.removed:
            parts.append(f"{self.removed} removed")
        text_ = f"{self.what}: {self.total} rows, " + ", ".join(parts)
        return text_ if self.changed_anything else text_ + "; nothing changed"


class Importer(ABC):
    """One import format: how a row is parsed, what the staging table holds, how it is checked
    against the database and merged into it."""

    spec: TableSpec
    # Staging columns named differently from the file's, for messages ("number" is "account").
    file_names: ClassVar[Mapping[str, str]] = {}

    def __init__(self) -> None:
        self.staging = Table(
            f"stage_{self.spec.what}",
            MetaData(),
            Column("line", Integer, nullable=False),
            *self.staging_columns(),
            prefixes=["TEMPORARY"],
        )
        self.present: frozenset[str] = frozenset(c.name for c in self.spec.columns)
        self._limits = _limits(self.staging)

    def given(self, column: str) -> bool:
        """Whether the file has ``column``. An optional column the file lacks leaves stored values
        alone; only a column that is there, even empty, changes them."""
        return column in self.present

    def upsert(
        self, target: Any, source: Any, key: tuple[str, ...], always: tuple[str, ...], optional: Mapping[str, str]
    ) -> Upsert:
        """An ``Upsert`` that compares and updates the ``always`` columns and those ``optional``
        ones (target column -> file column) the file has; the others are written for new rows only."""
        given = tuple(column for column, file_column in optional.items() if self.given(file_column))
        absent = tuple(column for column in optional if column not in given)
        return Upsert(target, source, key, always + given, absent)

    def fits(self, record: dict[str, Any]) -> None:
        """Refuse values the database column cannot hold, the same way on every database (SQLite
        would store an over-long text that PostgreSQL refuses)."""
        for name, check in self._limits.items():
            problem = check(record.get(name))
            if problem:
                raise RowError(problem, self.file_names.get(name, name))

    @abstractmethod
    def staging_columns(self) -> list[Column[Any]]:
        """The parsed fields of a row, as columns of the staging table."""

    @abstractmethod
    def parse(self, values: Mapping[str, str]) -> dict[str, Any]:
        """One row's cell texts -> the staging record, or ``RowError``."""

    def check(self, session: Session) -> list[Problem]:
        """Problems that need the database or the whole file (references, duplicates)."""
        return []

    def staging_indexes(self) -> list[Index]:
        """Indexes the checks and the merge need on the staging table."""
        return []

    @abstractmethod
    def merge(self, session: Session) -> ImportSummary:
        """Write the staged rows into the real tables and count what changed."""


def run_import(session: Session, reader: TableReader, importer: Importer) -> ImportSummary:
    """Import every row of ``reader`` or nothing: on any problem ``ProblemsFound`` is raised
    listing all of them, and the caller's rollback discards the partial staging."""
    staging = importer.staging
    importer.present = reader.columns or importer.present
    connection = session.connection()
    staging.drop(connection, checkfirst=True)
    staging.create(connection)
    for index in importer.staging_indexes():
        index.create(connection)
    try:
        summary = _check_and_merge(session, reader, importer)
    except DomainError:
        staging.drop(connection)
        raise
    staging.drop(connection)
    return summary


def _check_and_merge(session: Session, reader: TableReader, importer: Importer) -> ImportSummary:
    staging = importer.staging
    problems = _stage(session, reader, importer)
    rows = session.execute(select(func.count()).select_from(staging)).scalar_one()
    if rows == 0 and not problems:
        raise FileRejected(f"{reader.name}: the file has a header but no data rows")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f'ANALYZE "{staging.name}"'))  # temp tables are never auto-analyzed
    # Checks run on the rows that parsed, so one pass reports every kind of problem.
    problems += importer.check(session)
    if problems:
        raise ProblemsFound(problems, what=f"{reader.name} ({importer.spec.what})")
    return importer.merge(session)


def _stage(session: Session, reader: TableReader, importer: Importer) -> list[Problem]:
    problems: list[Problem] = []
    chunk: list[dict[str, Any]] = []
    for row in reader:
        try:
            record = importer.parse(row.values)
            importer.fits(record)
        except RowError as exc:
            problems.append(Problem(row.line, "invalid_value", str(exc)))
            continue
        record["line"] = row.line
        chunk.append(record)
        if len(chunk) >= CHUNK_ROWS:
            bulk_insert(session, importer.staging, chunk)
            chunk = []
    bulk_insert(session, importer.staging, chunk)
    return reader.problems + problems


INT32 = 2**31 - 1
INT16 = 2**15 - 1


def _limits(table: Table) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    for column in table.columns:
        if isinstance(column.type, String) and column.type.length:
            checks[column.name] = _text_check(column.type.length)
        elif isinstance(column.type, SmallInteger):
            checks[column.name] = _integer_check(INT16)
        elif isinstance(column.type, Integer) and column.name != "line":
            checks[column.name] = _integer_check(INT32)
    return checks


def _text_check(length: int) -> Any:
    def check(value: Any) -> str | None:
        if isinstance(value, str):
            if "\x00" in value:
                return "contains a NUL character"
            if len(value) > length:
                return f"is {len(value)} characters long, at most {length} fit"
        return None

    return check


def _integer_check(limit: int) -> Any:
    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
            return f"{value} is too large (at most {limit})"
        return None

    return check


def required(values: Mapping[str, str], column: str) -> str:
    value = values.get(column, "")
    if not value:
        raise RowError("is empty but required", column)
    return value


def parsed(values: Mapping[str, str], column: str, parser: Any, *, optional: bool = False) -> Any:
    """Apply ``parser`` to a cell, turning its ``ValueError`` into a ``RowError`` that names the
    column; an empty optional cell gives None."""
    value = values.get(column, "")
    if not value:
        if optional:
            return None
        raise RowError("is empty but required", column)
    try:
        return parser(value)
    except ValueError as exc:
        raise RowError(str(exc), column) from exc


def duplicate_problems(
    session: Session, staging: Table, key: Sequence[ColumnElement[Any]], label: str
) -> list[Problem]:
    """Rows whose ``key`` already appeared on an earlier line of the same file."""
    first_line = func.min(staging.c.line).over(partition_by=key)
    ranked = select(staging.c.line, first_line.label("first_line"), *key).subquery()
    rows = session.execute(select(ranked).where(ranked.c.line != ranked.c.first_line).order_by(ranked.c.line))
    return [
        Problem(row.line, "duplicate", f"{label} {_key_text(row, len(key))} already appears on line {row.first_line}")
        for row in rows
    ]


def _key_text(row: Any, width: int) -> str:
    return " / ".join(str(value) for value in tuple(row)[2 : 2 + width])


@dataclass(frozen=True)
class Upsert:
    """Merge ``source`` (a selectable whose columns are named like ``target``'s) into
    ``target`` by the natural ``key``: new keys are inserted, rows whose ``values`` differ are
    updated (and their ``updated_at`` stamped), equal rows are left alone."""

    target: Table
    source: Any  # a Subquery; typed loosely because SQLAlchemy's selectable types are broad
    key: tuple[str, ...]
    values: tuple[str, ...]  # compared and updated
    inserted: tuple[str, ...] = ()  # only written for new rows (columns the file does not have)
    # Key columns may be NULL ("for all buildings"), so they are matched with IS NOT DISTINCT
    # FROM; meant for small tables, since that comparison cannot use a plain index.
    nullable_key: bool = False

    def _joined(self) -> ColumnElement[bool]:
        if self.nullable_key:
            return and_(*(self.target.c[k].is_not_distinct_from(self.source.c[k]) for k in self.key))
        return and_(*(self.target.c[k] == self.source.c[k] for k in self.key))

    def _same(self) -> ColumnElement[bool]:
        return and_(true(), *(self.target.c[v].is_not_distinct_from(self.source.c[v]) for v in self.values))

    def count(self, session: Session, what: str) -> ImportSummary:
        """Classify every source row before anything is written."""
        anchor = self.target.c[self.key[0]]
        is_new = anchor.is_(None)
        statement = select(
            func.coalesce(func.sum(case((is_new, 1), else_=0)), 0),
            func.coalesce(func.sum(case((and_(anchor.is_not(None), self._same()), 1), else_=0)), 0),
            func.count(),
        ).select_from(self.source.outerjoin(self.target, self._joined()))
        created, unchanged, total = session.execute(statement).one()
        return ImportSummary(what, created=created, unchanged=unchanged, updated=total - created - unchanged)

    def apply(self, session: Session) -> None:
        columns = [*self.key, *self.values, *self.inserted]
        anchor = self.target.c[self.key[0]]
        new_rows = (
            select(*(self.source.c[c] for c in columns))
            .select_from(self.source.outerjoin(self.target, self._joined()))
            .where(anchor.is_(None))
        )
        session.execute(insert(self.target).from_select(columns, new_rows))
        if not self.values:
            return
        changes: dict[str, Any] = {v: self.source.c[v] for v in self.values}
        if "updated_at" in self.target.c:
            changes["updated_at"] = func.current_timestamp()
        session.execute(update(self.target).values(changes).where(self._joined()).where(not_(self._same())))

    def run(self, session: Session, what: str) -> ImportSummary:
        summary = self.count(session, what)
        self.apply(session)
        return summary
