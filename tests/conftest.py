"""Test fixtures: databases (SQLite always, PostgreSQL when available), sessions that roll back,
and committed scratch databases for command-line and process tests.

PostgreSQL comes from ``ZHKH_TEST_POSTGRES_URL`` or the local server on 127.0.0.1:5432. Each test
run creates its own databases (``zhkh_test_*``) and drops them at the end, so runs never see each
other's data. Where ``CI=true``, a missing server fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from zhkh.core import config, db
from zhkh.schema import upgrade

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _postgres_problem() -> str | None:
    try:
        engine = create_engine(db.normalize_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as exc:
        return f"PostgreSQL at {POSTGRES_URL} does not answer: {str(exc.orig).strip().splitlines()[0]}"
    return None


class PostgresServer:
    """Creates and drops the run's own databases on the test server."""

    def __init__(self, url: str) -> None:
        self.base = db.normalize_url(url)
        self.admin = create_engine(self.base, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def url(self, name: str) -> URL:
        return self.base.set(database=name)

    def create(self, template: str | None = None) -> URL:
        name = f"zhkh_test_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return self.url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    problem = _postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI=true requires it", pytrace=False)
        pytest.skip(problem)
    server = PostgresServer(POSTGRES_URL)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def postgres_template(postgres: PostgresServer) -> str:
    """A migrated database that per-test databases are cloned from (fast: a file copy)."""
    url = postgres.create()
    engine = db.create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    assert url.database is not None
    return url.database


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database shared by the run; tests see it through rolled-back transactions."""
    if backend == "sqlite":
        url: str | URL = f"sqlite:///{tmp_path_factory.mktemp('db') / 'shared.db'}"
        # The API test client calls endpoints from its own thread, on the test's connection.
        engine = db.create_db_engine(url, connect_args={"check_same_thread": False})
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        engine = db.create_db_engine(server.create(template=request.getfixturevalue("postgres_template")))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; the code under test
    may commit, which only releases a savepoint."""
    yield from _rolled_back_session(engine)


@pytest.fixture(scope="session")
def postgres_engine(postgres: PostgresServer, postgres_template: str) -> Iterator[Engine]:
    """For what only PostgreSQL has (the intake fast path); fails in CI when it is missing."""
    engine = db.create_db_engine(postgres.create(template=postgres_template))
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_session(postgres_engine: Engine) -> Iterator[Session]:
    yield from _rolled_back_session(postgres_engine)


def _rolled_back_session(engine: Engine) -> Iterator[Session]:
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()
    transaction.rollback()
    connection.close()


@pytest.fixture
def scratch_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database of the current backend that the test may commit to; it is
    also made the process default (``ZHKH_DATABASE_URL``) for code that opens its own sessions."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'zhkh.db'}"
        migrated = db.create_db_engine(url)
        upgrade(migrated)
        migrated.dispose()
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create(template=request.getfixturevalue("postgres_template")).render_as_string(hide_password=False)
    with use_database(url):
        yield url


class use_database:  # noqa: N801 - reads as a statement: `with use_database(url):`
    """Point settings and the cached engine at ``url`` for the duration of the block."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.previous = os.environ.get("ZHKH_DATABASE_URL")

    def __enter__(self) -> None:
        os.environ["ZHKH_DATABASE_URL"] = self.url
        self._clear()

    def __exit__(self, *exc: object) -> None:
        self._clear()
        if self.previous is None:
            os.environ.pop("ZHKH_DATABASE_URL", None)
        else:
            os.environ["ZHKH_DATABASE_URL"] = self.previous

    @staticmethod
    def _clear() -> None:
        db.dispose_engines()
        config.get_settings.cache_clear()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` to a file in the test's directory, in ``encoding``."""

    def write(name: str, content: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode(encoding))
        return path

    return write
