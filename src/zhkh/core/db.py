"""Database plumbing: the declarative base, engines and the transaction boundary.

Services receive a ``Session`` and only ``flush()``; the commit belongs to whoever opened the
session (``session_scope()`` in the CLI and workers, the request dependency in the API, the
fixture in tests).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

import orjson
from sqlalchemy import ARRAY, MetaData, Select, any_, bindparam, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from zhkh.core.config import get_settings

# Constraint names that are stable across databases, so Alembic can drop and alter them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A SELECT of any columns (SQLAlchemy 2.1 types a Select by the tuple of what it returns).
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalize_url(url: str | URL) -> URL:
    """Route plain ``postgresql://`` URLs to psycopg 3, the driver the project ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def create_db_engine(url: str | URL, **kwargs: Any) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        _ensure_sqlite_directory(parsed)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _configure_sqlite_connection)
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT; take it over.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    # psycopg prepares a statement after five runs, and PostgreSQL may then switch to a generic
    # plan that ignores the actual parameters: for the set-based queries of this project (arrays
    # of thousands of meters) that plan can be a hundred times slower. Plan each time instead.
    connect_args = {"prepare_threshold": None, **kwargs.pop("connect_args", {})}
    # JSON columns (the outbox's payloads) are read by orjson: a third of the time of the json
    # module, which counts when the ledger reads a million closed-period messages.
    kwargs.setdefault("json_deserializer", orjson.loads)
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _ensure_sqlite_directory(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # see the "begin" listener above
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk when it returns. NORMAL may lose the last commits on power loss,
    # and a ledger whose witnesses already cosigned those entries could never publish again.
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database), created once."""
    key = url or get_settings().database_url
    if key not in _engines:
        _engines[key] = create_db_engine(key)
    return _engines[key]


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, forked workers)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lookup_chunk(session: Session) -> int:
    """How many keys (account numbers, external ids) to look up per query. PostgreSQL takes them
    as one array and probes an index per key either way: 50,000 in one query cost a third of ten
    queries of 5,000 (measured at 1 M accounts). SQLite binds each key as a parameter, and allows
    32,766 of them."""
    return 50_000 if session.get_bind().dialect.name == "postgresql" else 30_000


def one_of(column: Any, values: Collection[Any], session: Session) -> Any:
    """``column IN values`` for a large collection: on PostgreSQL one array parameter
    (``= ANY(:values)``) instead of thousands of bound parameters the driver must parse."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
