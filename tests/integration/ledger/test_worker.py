"""`zhkh worker`'s ledger part on a committed database: with the log's key file and three witness
processes in its settings, one cycle logs the pending money facts and publishes a checkpoint
cosigned at quorum; the next cycle has nothing to do. Without a key, facts are logged and nothing
is published."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.integration.ledger.support import NUMBERS, Witnesses, build_town
from zhkh.core import db
from zhkh.core.config import Settings, WitnessEndpoint
from zhkh.core.outbox import OutboxMessage, emit
from zhkh.housing.models import Account
from zhkh.ledger import merkle, store
from zhkh.ledger.checkpoint import parse_checkpoint
from zhkh.ledger.note import parse_note, verified_by
from zhkh.ledger.publisher import Publication
from zhkh.ledger.sequencer import Sequencer
from zhkh.payments.models import PaymentSource
from zhkh.payments.service import Incoming, take_in
from zhkh.worker import Worker, fact_readers


def pay(url: str, tmp_path: Path, *payments: Incoming) -> None:
    engine = db.create_db_engine(url)
    try:
        with Session(engine) as session:
            if session.scalar(select(Account.id).limit(1)) is None:
                build_town(session, tmp_path, catalogue=False)
            take_in(session, PaymentSource.CASH_DESK, list(payments))
            session.commit()
    finally:
        engine.dispose()


def test_a_worker_cycle_logs_and_publishes(scratch_database: str, tmp_path: Path, witnesses: Witnesses) -> None:
    log = witnesses.fresh_log()
    key_file = tmp_path / "log.key"
    key_file.write_text(log.text + "\n")
    settings = Settings(
        database_url=scratch_database,
        ledger_origin=log.name,
        ledger_key_file=str(key_file),
        ledger_witnesses=[WitnessEndpoint(url=p.url, key=p.verifier.text) for p in witnesses.processes],
        ledger_quorum=2,
    )
    pay(scratch_database, tmp_path, Incoming("w-1", 1000, date(2026, 5, 5), NUMBERS[0]))
    engine = db.create_db_engine(scratch_database)
    try:
        worker = Worker(engine, settings=settings)
        report = worker.run_once()["ledger"]
        assert report["appended"] == 1
        published = report["published"]
        assert isinstance(published, Publication)
        assert (published.size, published.published, len(published.cosigners)) == (1, True, 3)
        with Session(engine) as session:
            latest = store.latest_checkpoint(session)
            assert latest is not None
            note = parse_note(latest.note)
            assert verified_by(note, [log.verifier]) == [log.verifier]
            assert len(verified_by(note, witnesses.verifiers)) == 3
            leaves = [merkle.leaf_hash(entry) for entry in store.entries(session, 0, 1)]
            assert parse_checkpoint(note.text).root == merkle.root(leaves)

        assert worker.run_once()["ledger"] == {"appended": 0, "published": None}

        pay(
            scratch_database,
            tmp_path,
            Incoming("w-2", 2000, date(2026, 5, 6), NUMBERS[1]),
            Incoming("w-3", 3000, date(2026, 5, 7), NUMBERS[2]),
        )
        worker.publisher.last_signed = None  # type: ignore[union-attr]  # (the interval is a second)
        report = worker.run_once()["ledger"]
        assert report["appended"] == 2
        assert (report["published"].size, report["published"].published) == (3, True)
    finally:
        engine.dispose()


def test_without_a_key_the_worker_logs_and_publishes_nothing(scratch_database: str, tmp_path: Path) -> None:
    pay(scratch_database, tmp_path, Incoming("n-1", 1000, date(2026, 5, 5), NUMBERS[0]))
    engine = db.create_db_engine(scratch_database)
    try:
        settings = Settings(database_url=scratch_database, ledger_key_file=str(tmp_path / "missing.key"))
        worker = Worker(engine, settings=settings)
        assert worker.publisher is None
        assert worker.run_once()["ledger"] == {"appended": 1, "published": None}
        with Session(engine) as session:
            assert store.tree_size(session) == 1
            assert store.latest_checkpoint(session) is None
    finally:
        engine.dispose()


def test_an_unreadable_message_stops_the_log_not_the_publication_of_what_is_logged(
    scratch_database: str, tmp_path: Path, witnesses: Witnesses
) -> None:
    """The log stops at a message it cannot read until someone repairs it; the entries logged
    before it are still published, so residents can prove them meanwhile."""
    log = witnesses.fresh_log()
    key_file = tmp_path / "log.key"
    key_file.write_text(log.text + "\n")
    settings = Settings(
        database_url=scratch_database,
        ledger_origin=log.name,
        ledger_key_file=str(key_file),
        ledger_witnesses=[WitnessEndpoint(url=p.url, key=p.verifier.text) for p in witnesses.processes],
        ledger_quorum=2,
    )
    pay(scratch_database, tmp_path, Incoming("x-1", 1000, date(2026, 5, 5), NUMBERS[0]))
    engine = db.create_db_engine(scratch_database)
    try:
        with Session(engine) as session:
            emit(session, "payments.received", {"payment_ids": [1], "transaction_ids": [987_654_321]})
            session.commit()
        worker = Worker(engine, settings=settings, sequencer=Sequencer(fact_readers(), batch=1))
        report = worker.run_once()["ledger"]
        assert report["appended"] == 1
        assert "987654321" in report["unreadable"]
        assert (report["published"].size, report["published"].published) == (1, True)
        with Session(engine) as session:
            pending = session.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.delivered_at.is_(None), OutboxMessage.topic == "payments.received"
                )
            ).all()
            assert len(pending) == 1, "the unreadable message waits for its repair"
    finally:
        engine.dispose()
