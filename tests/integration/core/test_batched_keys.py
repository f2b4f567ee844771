"""The foreign keys of the bulk paths keep a constraint's guarantees on both engines: on
PostgreSQL checked by statement-level triggers (``zhkh.core.batched_keys``), on SQLite by its
own foreign keys. What is refused, what is accepted, and that the check locks what it checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, NotSupportedError, OperationalError
from sqlalchemy.orm import Session

from tests.builders import metered_registry, registry
from tests.conftest import PostgresServer
from zhkh.core.batched_keys import BATCHED_KEYS
from zhkh.core.db import create_db_engine
from zhkh.finance import service as books
from zhkh.finance.models import Book, Component, Posting, TransactionKind
from zhkh.housing.models import Account, Organisation, OrganisationRole
from zhkh.metering.models import Meter

PERIOD = date(2026, 5, 1)
MISSING = 987_654_321


def _supplier(session: Session, inn: str) -> int:
    supplier = Organisation(inn=inn, name=f"ООО «Поставщик {inn}»", role=OrganisationRole.SUPPLIER)
    session.add(supplier)
    session.flush()
    return supplier.id


def _accrue(session: Session, accounts: list[int], supplier: int, amount: int = 1000) -> int:
    """One transaction: a receivable per account, the supplier's accrued charges against them."""
    entries = [
        books.receivable(account, "maintenance", supplier, PERIOD, amount, Component.PRINCIPAL) for account in accounts
    ]
    entries.append(books.Entry(Book.ACCRUED, -amount * len(accounts), service="maintenance", supplier_id=supplier))
    return books.record(session, TransactionKind.ACCRUAL, PERIOD, "test", None, "accruals of May", entries)


def _refused(session: Session, constraint: str) -> pytest.RaisesExc[Exception]:
    """SQLite names no constraint in its message; PostgreSQL's triggers name the one they replace.
    A COPY (``core.bulk``) raises psycopg's own error, a statement SQLAlchemy's."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    errors = (IntegrityError, psycopg.errors.ForeignKeyViolation)
    return pytest.raises(errors, match="FOREIGN KEY constraint failed" if sqlite else constraint)


@pytest.fixture
def accounts(session: Session, tmp_path: Path) -> list[int]:
    registry(session, tmp_path, premises=5)
    return list(session.scalars(select(Account.id).order_by(Account.id)))


def test_postings_of_existing_rows_are_written_in_bulk(session: Session, accounts: list[int]) -> None:
    supplier = _supplier(session, "7700000105")
    transaction = _accrue(session, accounts, supplier)
    stored = session.scalar(select(func.count()).where(Posting.transaction_id == transaction))
    assert stored == len(accounts) + 1


def test_a_posting_for_an_unknown_account_is_refused_and_nothing_of_the_statement_stays(
    session: Session, accounts: list[int]
) -> None:
    supplier = _supplier(session, "7700000106")
    before = session.scalar(select(func.count()).select_from(Posting))
    with _refused(session, "fk_postings_account_id_accounts"), session.begin_nested():
        _accrue(session, [*accounts, MISSING], supplier)
    assert session.scalar(select(func.count()).select_from(Posting)) == before


def test_a_posting_for_an_unknown_supplier_is_refused(session: Session, accounts: list[int]) -> None:
    with _refused(session, "fk_postings_supplier_id_organisations"), session.begin_nested():
        _accrue(session, accounts[:1], MISSING)


def test_deleting_a_referenced_row_is_refused_an_unreferenced_one_is_not(session: Session, accounts: list[int]) -> None:
    used, unused = _supplier(session, "7700000107"), _supplier(session, "7700000108")
    _accrue(session, accounts[:2], used)
    with _refused(session, "fk_postings_supplier_id_organisations"), session.begin_nested():
        session.execute(delete(Organisation).where(Organisation.id.in_([used, unused])))
    session.execute(delete(Organisation).where(Organisation.id == unused))
    remaining = set(session.scalars(select(Organisation.id).where(Organisation.id.in_([used, unused]))))
    assert remaining == {used}


def test_changing_a_referenced_id_is_refused(session: Session, accounts: list[int]) -> None:
    supplier = _supplier(session, "7700000109")
    _accrue(session, accounts[:1], supplier)
    with _refused(session, "fk_postings_supplier_id_organisations"), session.begin_nested():
        session.execute(update(Organisation).where(Organisation.id == supplier).values(id=MISSING))


def test_on_postgresql_every_batched_key_is_a_set_of_triggers_not_a_constraint(postgres_session: Session) -> None:
    connection = postgres_session.connection()
    constraints = set(connection.scalars(text("SELECT conname FROM pg_constraint WHERE contype = 'f'")))
    rows = connection.execute(text("SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"))
    triggers = {(name, table) for name, table in rows}
    for key in BATCHED_KEYS:
        assert key.constraint not in constraints
        assert set(key.triggers().items()) <= triggers, key
        assert (key.truncate_trigger, key.referenced) in triggers, key


def test_on_postgresql_an_update_to_an_unknown_key_is_refused(postgres_session: Session, tmp_path: Path) -> None:
    # billed accounts are a snapshot table, not append-only: an UPDATE reaches the row check
    registry(postgres_session, tmp_path, premises=1)
    account, building = postgres_session.execute(
        text("SELECT a.id, p.building_id FROM accounts a JOIN premises p ON p.id = a.premise_id")
    ).one()
    postgres_session.execute(
        text(
            "INSERT INTO billed_accounts (period, account_id, building_id, area, residents, owners, meter_possible) "
            "VALUES (:period, :account, :building, 50, 1, 1, true)"
        ),
        {"period": PERIOD, "account": account, "building": building},
    )
    with pytest.raises(IntegrityError, match="fk_billed_accounts_building_id"), postgres_session.begin_nested():
        postgres_session.execute(text("UPDATE billed_accounts SET building_id = :missing"), {"missing": MISSING})


def _truncate(session: Session, tables: str) -> None:
    # The books' balance check is deferred to the commit, and PostgreSQL refuses to TRUNCATE
    # a table with pending trigger events: run it now, as the commit would.
    session.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
    session.execute(text(f"TRUNCATE {tables}"))


def test_on_postgresql_truncating_a_referenced_table_is_refused_while_references_remain(
    postgres_session: Session, tmp_path: Path
) -> None:
    """``CASCADE`` follows only real constraints: it does not empty the postings or readings
    that point at the rows, so the TRUNCATE is refused with PostgreSQL's own error."""
    metered_registry(postgres_session, tmp_path)
    accounts = list(postgres_session.scalars(select(Account.id)))
    _accrue(postgres_session, accounts, _supplier(postgres_session, "7700000111"))
    meter = postgres_session.scalars(select(Meter.id)).first()
    postgres_session.execute(
        text(
            "INSERT INTO readings (meter_id, zone, taken_at, value, status, source) "
            "VALUES (:meter, 1, '2026-03-10 09:00:00+00', 10, 'accepted', 'test')"
        ),
        {"meter": meter},
    )
    refusals = {
        "finance_transactions CASCADE": ("fk_postings_transaction_id_finance_transactions", "postings"),
        "accounts CASCADE": ("fk_postings_account_id_accounts", "postings"),
        "meters CASCADE": ("fk_readings_meter_id_meters", "readings"),
    }
    for tables, (constraint, referencing) in refusals.items():
        with pytest.raises(NotSupportedError) as refused, postgres_session.begin_nested():
            _truncate(postgres_session, tables)
        diagnostic = refused.value.orig.diag  # type: ignore[union-attr]
        assert diagnostic.constraint_name == constraint, tables
        assert diagnostic.message_detail == f'Table "{referencing}" references "{tables.split()[0]}".'
    assert postgres_session.scalar(select(func.count()).select_from(Posting)) == len(accounts) + 1
    assert postgres_session.scalar(select(func.count()).select_from(text("readings"))) == 1


def test_on_postgresql_a_referenced_table_truncated_with_its_references_is_emptied(
    postgres_session: Session, tmp_path: Path
) -> None:
    registry(postgres_session, tmp_path, premises=2)
    accounts = list(postgres_session.scalars(select(Account.id)))
    _accrue(postgres_session, accounts, _supplier(postgres_session, "7700000112"))
    _truncate(postgres_session, "postings, payments, finance_transactions CASCADE")
    assert postgres_session.scalar(select(func.count()).select_from(text("finance_transactions"))) == 0
    _accrue(postgres_session, accounts, _supplier(postgres_session, "7700000113"))  # the checks still work


@pytest.fixture
def committed_engine(postgres: PostgresServer, postgres_template: str) -> Iterator[Engine]:
    """A database of its own: the two transactions below commit."""
    engine = create_db_engine(postgres.create(template=postgres_template))
    yield engine
    engine.dispose()


def test_on_postgresql_the_check_locks_the_rows_it_found_until_commit(committed_engine: Engine, tmp_path: Path) -> None:
    """A supplier referenced by an uncommitted posting cannot be deleted meanwhile (the delete
    waits for the lock), and once the posting is committed the delete is refused."""
    with Session(committed_engine) as setup, setup.begin():
        registry(setup, tmp_path, premises=1)
        supplier = _supplier(setup, "7700000110")
        account = setup.scalars(select(Account.id)).one()
    with Session(committed_engine) as writer, Session(committed_engine) as deleter:
        writer.begin()
        _accrue(writer, [account], supplier)
        deleter.begin()
        deleter.execute(text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            deleter.execute(delete(Organisation).where(Organisation.id == supplier))
        deleter.rollback()
        writer.commit()
        with pytest.raises(IntegrityError, match='still referenced from table "postings"'), deleter.begin():
            deleter.execute(delete(Organisation).where(Organisation.id == supplier))


def test_readings_of_unknown_meters_or_readings_are_refused(session: Session, tmp_path: Path) -> None:
    metered_registry(session, tmp_path)
    meter = session.scalars(select(Meter.id).order_by(Meter.id)).first()
    insert = text(
        "INSERT INTO readings (meter_id, zone, taken_at, value, status, source, corrects_id, received_at) "
        "VALUES (:meter, 1, :at, 10, 'accepted', 'test', :corrects, CURRENT_TIMESTAMP)"
    )
    session.execute(insert, {"meter": meter, "at": "2026-03-10 09:00:00+00", "corrects": None})
    with _refused(session, "fk_readings_meter_id_meters"), session.begin_nested():
        session.execute(insert, {"meter": MISSING, "at": "2026-03-11 09:00:00+00", "corrects": None})
    with _refused(session, "fk_readings_corrects_id_readings"), session.begin_nested():
        session.execute(insert, {"meter": meter, "at": "2026-03-12 09:00:00+00", "corrects": MISSING})
    with _refused(session, "fk_readings_superseded_by_id_readings"), session.begin_nested():
        session.execute(text("UPDATE readings SET superseded_by_id = :missing"), {"missing": MISSING})
    assert session.scalar(select(func.count()).select_from(text("readings"))) == 1
