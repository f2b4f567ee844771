"""The sequencer on the real producers' messages: a billing run closed (billing.accrued), payments
taken in at the cash desk (received, allocated, unidentified), a month's penalties and a
remittance. Their facts become entries in outbox order, once; the entries are canonical, name
accounts only by their salted commitments, carry amounts as integers, balance as the books do,
and hold no account number, name or address of the registry."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.builders import SUPPLIER_INN, building, import_rows, organisation, premise
from tests.integration.billing.conftest import MARCH
from tests.integration.ledger.support import (
    ADDRESS,
    NUMBERS,
    OWNERS,
    PAYERS,
    STRANGER,
    Factory,
    accrued_message,
    factory_on,
    sha256_hex,
)
from zhkh.billing.models import AccrualLine
from zhkh.billing.service import close_period, run_billing
from zhkh.core.outbox import OutboxMessage, emit
from zhkh.core.periods import Period
from zhkh.finance.models import Posting
from zhkh.housing.imports import BuildingsImport, OrganisationsImport, PremisesImport
from zhkh.housing.models import Account, Organisation
from zhkh.ledger import store
from zhkh.ledger.entries import canonical, floats_in
from zhkh.ledger.models import AccountSalt, LedgerEntry
from zhkh.ledger.note import generate_signer
from zhkh.ledger.publisher import PUBLISH_LOCK, Publisher
from zhkh.ledger.sequencer import Sequencer, UnreadableFact
from zhkh.payments.models import PaymentSource, UnmatchedPayment
from zhkh.payments.penalties import charge_penalties
from zhkh.payments.remittance import remit
from zhkh.payments.service import Incoming, take_in
from zhkh.worker import fact_readers

MONEY_TYPES = {"accrual", "benefit", "recalculation", "payment", "allocation", "penalty", "remittance"}


@pytest.fixture
def money_facts(session: Session, billed_town: dict[str, int]) -> dict[str, int]:
    """Every producer of money facts, once, in an order that interleaves their topics."""
    run_billing(session, MARCH)
    close_period(session, MARCH)
    take_in(
        session,
        PaymentSource.CASH_DESK,
        [
            Incoming("c-1", 150000, date(2026, 4, 20), NUMBERS[0], payer=PAYERS[0]),
            Incoming("c-2", 5000, date(2026, 4, 21), NUMBERS[1], payer=PAYERS[1], purpose=ADDRESS),
            Incoming("c-3", 7000, date(2026, 4, 22), None, payer=STRANGER, unmatched_reason="no account number"),
        ],
    )
    accrued_message(session, billed_town[NUMBERS[2]], "2026-04")
    charge_penalties(session, Period(2026, 6))
    remit(session, date(2026, 4, 25))
    take_in(session, PaymentSource.CASH_DESK, [Incoming("c-4", 2500, date(2026, 6, 2), NUMBERS[2], payer=PAYERS[2])])
    session.flush()
    return billed_town


def sequence(session: Session, factory: Factory, batch: int = 20_000) -> int:
    """Run the sequencer as the worker does (its own sessions), then look at what it wrote."""
    try:
        return Sequencer(fact_readers(), batch=batch).run_once(factory)
    finally:
        session.expire_all()


def money_messages(session: Session) -> list[OutboxMessage]:
    return list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic.in_(list(fact_readers()))).order_by(OutboxMessage.id)
        )
    )


def log_entries(session: Session) -> list[tuple[LedgerEntry, dict[str, Any]]]:
    rows = session.scalars(select(LedgerEntry).order_by(LedgerEntry.idx)).all()
    return [(row, json.loads(row.data)) for row in rows]


def message_keys(message: OutboxMessage) -> set[tuple[str, Any]]:
    """What in an entry says it came from ``message``: the transactions the message names, or
    for billing, the account and period."""
    payload = message.payload
    if message.topic == "billing.accrued":
        return {("billing", (payload["account_id"], payload["period"]))}
    ids = payload.get("transaction_ids") or [payload["transaction_id"]]
    return {("transaction", int(i)) for i in ids}


def test_money_facts_become_entries_in_outbox_order_once(
    session: Session, factory: Factory, money_facts: dict[str, int]
) -> None:
    messages = money_messages(session)
    topics = Counter(m.topic for m in messages)
    assert set(topics) == {
        "billing.accrued",
        "payments.received",
        "payments.allocated",
        "payments.unidentified",
        "payments.penalty_charged",
        "payments.remitted",
    }, topics
    assert topics["billing.accrued"] == 4  # three accounts closed in March, one message of April
    others = session.scalars(select(OutboxMessage.id).where(OutboxMessage.topic.not_in(list(fact_readers())))).all()
    assert others, "billing.closed is not the ledger's"

    appended = sequence(session, factory, batch=3)  # several appends of odd sizes

    entries = log_entries(session)
    assert appended == len(entries) == store.tree_size(session) > len(messages)
    assert {m.id for m in money_messages(session) if m.delivered_at is None} == set()
    assert all(m.attempts == 1 for m in money_messages(session))
    assert session.scalars(select(OutboxMessage.delivered_at).where(OutboxMessage.id.in_(others))).all() == [
        None
    ] * len(others)

    # Outbox order: the message each entry comes from never goes back.
    salts = {
        account: bytes(salt) for account, salt in session.execute(select(AccountSalt.account_id, AccountSalt.salt))
    }
    numbers = dict(session.execute(select(Account.id, Account.number)).all())
    accounts = {sha256_hex(salts[a], numbers[a]): a for a in salts}
    source_of = {key: m.id for m in messages for key in message_keys(m)}
    sources = []
    for _row, entry in entries:
        if entry["type"] in {"accrual", "benefit", "recalculation"}:
            sources.append(source_of[("billing", (accounts[entry["account"]], entry["period"]))])
        else:
            sources.append(source_of[("transaction", entry["transaction"])])
    assert sources == sorted(sources)
    assert set(sources) == {m.id for m in messages}, "every message is in the log"

    assert sequence(session, factory) == 0, "nothing is logged twice"
    assert store.tree_size(session) == len(entries)


def test_entries_are_canonical_committed_integer_and_balanced(
    session: Session, factory: Factory, money_facts: dict[str, int]
) -> None:
    sequence(session, factory)
    salts = {
        account: bytes(salt) for account, salt in session.execute(select(AccountSalt.account_id, AccountSalt.salt))
    }
    assert set(salts) == set(money_facts.values()), "a salt for every account in the log, and only those"
    commitments = {sha256_hex(salts[a], n): a for n, a in money_facts.items()}
    by_transaction: dict[int, list[dict[str, Any]]] = defaultdict(list)
    types: Counter[str] = Counter()
    for row, entry in log_entries(session):
        assert canonical(entry) == row.data, "sorted keys, no spaces, UTF-8"
        assert entry["v"] == 1
        assert entry["type"] in MONEY_TYPES
        types[entry["type"]] += 1
        assert floats_in(entry) == []
        if "account" in entry:
            assert entry["account"] in commitments, "SHA-256(salt || number) of a registry account"
            assert row.commitment == bytes.fromhex(entry["account"])
        else:
            assert row.commitment is None
        if "transaction" in entry:
            by_transaction[entry["transaction"]].append(entry)
            assert row.period == date.fromisoformat(entry["date"]).replace(day=1)
            assert all(isinstance(p["kopecks"], int) for p in entry["postings"])
        else:
            assert row.period == Period.parse(entry["period"]).first_day
            assert entry["total"] == sum(line["kopecks"] for line in entry["lines"])
            assert all(isinstance(line["kopecks"], int) for line in entry["lines"])
    assert set(types) == MONEY_TYPES, types

    # Each transaction's entries together are its postings in the books, and they balance.
    for transaction_id, parts in by_transaction.items():
        logged = Counter((p["book"], p["kopecks"]) for part in parts for p in part["postings"])
        books = Counter(
            (str(book), amount)
            for book, amount in session.execute(
                select(Posting.book, Posting.amount).where(Posting.transaction_id == transaction_id)
            )
        )
        assert logged == books, transaction_id
        assert sum(p["kopecks"] for part in parts for p in part["postings"]) == 0

    # March's accruals: each account's entry total is its charge lines in the billing tables.
    march = {
        account: int(total)
        for account, total in session.execute(
            select(AccrualLine.account_id, func.sum(AccrualLine.amount))
            .where(AccrualLine.period == MARCH.first_day, AccrualLine.kind == "charge")
            .group_by(AccrualLine.account_id)
        )
    }
    logged_march = {
        commitments[entry["account"]]: entry["total"]
        for _row, entry in log_entries(session)
        if entry["type"] == "accrual" and entry["period"] == "2026-03"
    }
    assert logged_march == march
    assert len(march) == 3


def test_no_personal_data_in_any_entry(session: Session, factory: Factory, money_facts: dict[str, int]) -> None:
    sequence(session, factory)
    unmatched = session.scalars(select(UnmatchedPayment)).one()
    assert unmatched.payer == STRANGER  # the producer did keep it: in its own table
    salts = [salt.hex() for salt in session.scalars(select(AccountSalt.salt))]
    surnames = [name.split()[0] for name in [*PAYERS, *OWNERS, STRANGER]]
    secrets = [*NUMBERS, *PAYERS, *OWNERS, STRANGER, ADDRESS, "Сиреневая", *surnames, *salts]
    entries = log_entries(session)
    assert len(entries) > 10
    for row, _entry in entries:
        data = bytes(row.data).decode()
        found = [secret for secret in secrets if secret in data]
        assert found == [], f"entry {row.idx} shows {found}: {data}"


def test_an_unreadable_message_stops_the_log_and_appends_nothing(
    session: Session, factory: Factory, town: dict[str, int]
) -> None:
    take_in(session, PaymentSource.CASH_DESK, [Incoming("u-1", 1000, date(2026, 5, 5), NUMBERS[0])])
    sequence(session, factory)
    size = store.tree_size(session)
    assert size == 1
    salts_before = session.scalar(select(func.count()).select_from(AccountSalt))

    take_in(session, PaymentSource.CASH_DESK, [Incoming("u-2", 2000, date(2026, 5, 6), NUMBERS[1])])
    ghost = emit(session, "payments.received", {"payment_ids": [1], "transaction_ids": [987_654_321]})
    session.flush()
    # Consecutive messages of a topic are read together: the span ends at the unreadable one.
    with pytest.raises(UnreadableFact, match=rf"\.\.{ghost.id} \(payments\.received\) could not be read: .*987654321"):
        sequence(session, factory)
    assert store.tree_size(session) == size, "the readable message before it was not appended either"
    assert session.scalar(select(func.count()).select_from(AccountSalt)) == salts_before
    pending = session.scalars(
        select(OutboxMessage.topic).where(
            OutboxMessage.delivered_at.is_(None), OutboxMessage.topic.in_(list(fact_readers()))
        )
    ).all()
    assert sorted(pending) == ["payments.received", "payments.received"]
    with pytest.raises(UnreadableFact):
        sequence(session, factory)  # and it does not skip it the next time

    session.delete(ghost)  # (an operator repairing the producer's mistake)
    emit(session, "billing.accrued", {"period": "2026-05", "account_id": town[NUMBERS[0]]})  # no lines
    session.flush()
    with pytest.raises(UnreadableFact, match=r"billing\.accrued"):
        sequence(session, factory)
    assert store.tree_size(session) == size


def test_a_second_worker_leaves_appending_to_the_first(
    postgres_session: Session, postgres_engine: Engine, tmp_path: Path
) -> None:
    """PostgreSQL: while another connection holds the append lock, the sequencer appends nothing
    and leaves the messages pending; the publisher likewise while another publishes."""
    session = postgres_session
    import_rows(session, tmp_path, OrganisationsImport(), [organisation()])
    import_rows(session, tmp_path, BuildingsImport(), [building()])
    import_rows(session, tmp_path, PremisesImport(), [premise(account=NUMBERS[0])])
    take_in(session, PaymentSource.CASH_DESK, [Incoming("l-1", 1000, date(2026, 5, 5), NUMBERS[0])])
    factory = factory_on(session)
    with postgres_engine.connect() as other, other.begin():
        assert store.take_lock(Session(bind=other), wait=False)
        assert sequence(session, factory) == 0
        assert store.tree_size(session) == 0
    assert sequence(session, factory) == 1
    pending = session.scalars(
        select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.topic == "payments.received")
    ).all()
    assert pending == []
    publisher = Publisher(generate_signer("zhkh.test/locked"), "zhkh.test/locked")
    with postgres_engine.connect() as other, other.begin():
        assert store.take_lock(Session(bind=other), wait=False, key=PUBLISH_LOCK)
        assert publisher.publish_if_due(factory) is None, "another publisher holds the lock"
    publication = publisher.publish_if_due(factory)  # no witnesses, quorum 0: the log's signature alone
    assert publication is not None
    assert (publication.size, publication.published) == (1, True)


def test_a_fact_too_big_for_an_entry_bundle_is_refused_before_it_is_logged(
    session: Session, factory: Factory, town: dict[str, int]
) -> None:
    """tlog-tiles bundles prefix each entry with a uint16 length: an entry over 65,535 bytes could
    be appended but never served, exported or verified, and the log can never drop it."""
    supplier = session.scalars(select(Organisation.id).where(Organisation.inn == SUPPLIER_INN)).one()
    lines = [
        {"line_id": n, "service": "hot_water", "zone": 0, "supplier_id": supplier, "kind": "recalculation",
         "amount": -100, "corrects_period": f"{1900 + n // 12}-{n % 12 + 1:02d}"}
        for n in range(1000)
    ]  # fmt: skip
    emit(session, "billing.accrued", {"period": "2026-04", "account_id": town[NUMBERS[0]], "total": 0, "lines": lines})
    session.flush()
    with pytest.raises(UnreadableFact, match=r"65535"):
        sequence(session, factory)
    assert store.tree_size(session) == 0
    assert session.scalar(select(func.count()).select_from(AccountSalt)) == 0
