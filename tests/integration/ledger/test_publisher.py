"""The publisher against three real witness processes (`zhkh witness serve` on loopback): every
checkpoint is cosigned over HTTP, published at quorum only, kept going by a quorum while a witness
is down, stopped without one, and caught up after a restart; forks and rollbacks of the same log
key are refused by the witnesses themselves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.conftest import PostgresServer
from tests.integration.ledger.support import Factory, Witnesses, append_synthetic, factory_on
from zhkh.core import db
from zhkh.ledger import merkle, store
from zhkh.ledger.checkpoint import parse_checkpoint
from zhkh.ledger.models import LedgerCheckpoint, LedgerEntry, LedgerTile
from zhkh.ledger.note import Signer, parse_note, verified_by
from zhkh.ledger.witness import create_witness_engine, read_state, witness_evidence


def witness_sizes(witnesses: Witnesses, origin: str) -> list[int | None]:
    """What each witness process has stored for ``origin`` (its own state database)."""
    sizes = []
    for process in witnesses.processes:
        engine = create_witness_engine(process.database)
        try:
            state = read_state(engine, origin)
        finally:
            engine.dispose()
        sizes.append(None if state is None else state.size)
    return sizes


def evidence_count(witnesses: Witnesses, origin: str) -> list[int]:
    counts = []
    for process in witnesses.processes:
        engine = create_witness_engine(process.database)
        try:
            with engine.connect() as connection:
                rows = connection.execute(select(witness_evidence.c.status).where(witness_evidence.c.origin == origin))
                counts.append(len(rows.all()))
        finally:
            engine.dispose()
    return counts


def published(session: Session) -> list[tuple[int, int]]:
    return [(c.size, c.cosigners) for c in session.scalars(select(LedgerCheckpoint).order_by(LedgerCheckpoint.size))]


def check_note(session: Session, log: Signer, witnesses: Witnesses) -> list[str]:
    """The newest published note: signed by the log, its root the root of the stored entries;
    returns the names of the witnesses whose cosignatures verify."""
    latest = store.latest_checkpoint(session)
    assert latest is not None
    note = parse_note(latest.note)
    assert verified_by(note, [log.verifier]) == [log.verifier]
    checkpoint = parse_checkpoint(note.text)
    leaves = [merkle.leaf_hash(entry) for entry in store.entries(session, 0, checkpoint.size)]
    assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (log.name, latest.size, merkle.root(leaves))
    assert latest.root == checkpoint.root
    return [v.name for v in verified_by(note, witnesses.verifiers)]


def test_each_checkpoint_is_cosigned_by_all_three_witnesses(
    session: Session, factory: Factory, witnesses: Witnesses
) -> None:
    log = witnesses.fresh_log()
    publisher = witnesses.publisher(log, quorum=2)
    everyone = sorted(v.name for v in witnesses.verifiers)
    for batch, size in ((5, 5), (1, 6), (300, 306), (3, 309)):
        append_synthetic(session, batch)
        result = publisher.publish_if_due(factory)
        assert result is not None
        assert (result.size, result.published, sorted(result.cosigners), result.failures) == (size, True, everyone, {})
        assert sorted(check_note(session, log, witnesses)) == everyone
        assert witness_sizes(witnesses, log.name) == [size] * 3
    assert published(session) == [(5, 3), (6, 3), (306, 3), (309, 3)]


def test_a_fresh_publisher_finds_where_each_witness_is(
    session: Session, factory: Factory, witnesses: Witnesses
) -> None:
    """A restarted worker knows no witness's size: it offers the published size, and a witness
    that cosigned more since (a checkpoint that missed its quorum) answers 409 and is asked again."""
    log = witnesses.fresh_log()
    append_synthetic(session, 4)
    assert witnesses.publisher(log).publish_if_due(factory) is not None
    append_synthetic(session, 3)
    # Only one witness configured with quorum 2: it cosigns size 7, nothing is published.
    lonely = witnesses.publisher(log, quorum=2)
    lonely.witnesses = lonely.witnesses[:1]
    result = lonely.publish_if_due(factory)
    assert result is not None
    assert (result.published, len(result.cosigners)) == (False, 1)
    assert witness_sizes(witnesses, log.name) == [7, 4, 4]
    assert published(session) == [(4, 3)]

    append_synthetic(session, 2)
    result = witnesses.publisher(log).publish_if_due(factory)
    assert result is not None
    assert (result.size, result.published, len(result.cosigners), result.failures) == (9, True, 3, {})
    assert witness_sizes(witnesses, log.name) == [9, 9, 9], "the first witness was at 7, the others at 4"


def test_the_interval_between_signatures_and_nothing_pending(
    session: Session, factory: Factory, witnesses: Witnesses
) -> None:
    log = witnesses.fresh_log()
    now = [100.0]
    publisher = witnesses.publisher(log, interval=1.0, clock=lambda: now[0])
    assert publisher.publish_if_due(factory) is None, "an empty log publishes nothing"
    assert witness_sizes(witnesses, log.name) == [None] * 3, "and asks no witness"

    append_synthetic(session, 2)
    result = publisher.publish_if_due(factory)
    assert result is not None
    assert result.published
    append_synthetic(session, 1)
    now[0] = 100.5
    assert publisher.publish_if_due(factory) is None, "half a second after the last signature"
    assert published(session) == [(2, 3)]
    now[0] = 101.0
    result = publisher.publish_if_due(factory)
    assert result is not None
    assert (result.size, result.published) == (3, True)
    now[0] = 110.0
    assert publisher.publish_if_due(factory) is None, "nothing new since the last checkpoint"
    assert published(session) == [(2, 3), (3, 3)]
    assert witness_sizes(witnesses, log.name) == [3] * 3


@pytest.fixture
def stoppable(witnesses: Witnesses) -> Iterator[Witnesses]:
    """The run's witnesses, for a test that stops some of them: whatever it stopped is started
    again afterwards (same key, same state database, same port), as their operators would."""
    yield witnesses
    stopped = [n for n, process in enumerate(witnesses.processes) if process.process is None]
    witnesses.restart(*stopped)


def test_a_quorum_keeps_the_log_going_and_restarted_witnesses_catch_up(
    postgres_session: Session, stoppable: Witnesses
) -> None:
    """On PostgreSQL only: restarting processes is slow, and every other publisher test runs on
    both backends."""
    session, factory, witnesses = postgres_session, factory_on(postgres_session), stoppable
    log = witnesses.fresh_log()
    publisher = witnesses.publisher(log, quorum=2)
    append_synthetic(session, 3)
    first = publisher.publish_if_due(factory)
    assert first is not None
    assert (first.published, len(first.cosigners)) == (True, 3)

    witnesses.processes[0].stop()
    append_synthetic(session, 4)
    second = publisher.publish_if_due(factory)
    assert second is not None
    assert (second.size, second.published, len(second.cosigners)) == (7, True, 2)
    assert list(second.failures) == [witnesses.processes[0].verifier.name]
    assert "unreachable" in second.failures[witnesses.processes[0].verifier.name]
    assert sorted(check_note(session, log, witnesses)) == sorted(v.name for v in witnesses.verifiers[1:])

    witnesses.processes[1].stop()
    append_synthetic(session, 2)
    third = publisher.publish_if_due(factory)
    assert third is not None
    assert (third.size, third.published, len(third.cosigners)) == (9, False, 1)
    assert sorted(third.failures) == sorted(v.name for v in witnesses.verifiers[:2])
    assert published(session) == [(3, 3), (7, 2)], "below the quorum nothing is published"
    assert publisher.publish_if_due(factory) is not None  # tried again: still no quorum, still nothing
    assert published(session) == [(3, 3), (7, 2)]

    witnesses.restart(0, 1)  # the same state databases and keys
    assert witness_sizes(witnesses, log.name) == [3, 7, 9]
    fourth = witnesses.publisher(log, quorum=2).publish_if_due(factory)  # as after a worker restart
    assert fourth is not None
    assert (fourth.size, fourth.published, len(fourth.cosigners), fourth.failures) == (9, True, 3, {})
    assert published(session) == [(3, 3), (7, 2), (9, 3)]
    assert witness_sizes(witnesses, log.name) == [9, 9, 9]
    restarted = witnesses.processes[0]
    answers = (restarted.directory / f"witness-{restarted.starts}.log").read_text()
    assert '"POST /add-checkpoint HTTP/1.1" 409' in answers, "the witness that missed two checkpoints said where it was"
    assert '"POST /add-checkpoint HTTP/1.1" 200' in answers


# --- forks and rollbacks ---------------------------------------------------------------------------

LEDGER_TABLES = [LedgerEntry.__table__, LedgerTile.__table__, LedgerCheckpoint.__table__]


@pytest.fixture
def other_log(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A second log database of the same backend: what an operator who rewrote history (or
    shows someone else another one) would publish from, with the same log key."""
    if backend == "sqlite":
        engine = db.create_db_engine(f"sqlite:///{tmp_path / 'other-log.db'}")
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        engine = create_engine(server.create())
    db.Base.metadata.create_all(engine, tables=LEDGER_TABLES)  # type: ignore[arg-type]
    try:
        yield lambda: Session(engine, expire_on_commit=False)
    finally:
        engine.dispose()


def rewrite(factory: Factory, size: int) -> None:
    """Empty the other log and fill it with ``size`` entries of another history."""
    with factory() as session, session.begin():
        for table in LEDGER_TABLES:
            session.execute(table.delete())  # type: ignore[attr-defined]
        append_synthetic(session, size, tag="forged")


@pytest.mark.parametrize(
    ("forged_size", "refusal", "evidence"),
    [
        (6, "409: size 6 was cosigned with a different root hash: a fork", 1),
        (9, "422: consistency proof from 6 to 9 does not verify", 1),
        (4, "it has size 6", 0),
    ],
    ids=["same-size", "larger", "smaller"],
)
def test_another_history_under_the_same_key_is_refused(
    session: Session,
    factory: Factory,
    other_log: Factory,
    witnesses: Witnesses,
    forged_size: int,
    refusal: str,
    evidence: int,
) -> None:
    log = witnesses.fresh_log()
    append_synthetic(session, 6)
    honest = witnesses.publisher(log).publish_if_due(factory)
    assert honest is not None
    assert honest.published

    rewrite(other_log, forged_size)
    forger = witnesses.publisher(log, quorum=1)
    forged = forger.publish_if_due(other_log)
    assert forged is not None
    assert (forged.size, forged.published, forged.cosigners) == (forged_size, False, [])
    assert sorted(forged.failures) == sorted(v.name for v in witnesses.verifiers)
    with other_log() as other:
        assert other.scalar(select(LedgerCheckpoint.size)) is None, "nothing published from the forged log"
    assert witness_sizes(witnesses, log.name) == [6, 6, 6]
    for reason in forged.failures.values():
        assert refusal in reason, forged.failures
    assert evidence_count(witnesses, log.name) == [evidence] * 3, "a signed contradiction is kept as evidence"

    # Asked again, knowing each witness's size now: one request each, refused again, once.
    again = forger.publish_if_due(other_log)
    assert again is not None
    assert (again.published, again.cosigners) == (False, [])
    assert evidence_count(witnesses, log.name) == [2 * evidence] * 3, "a refusal is not a reason to ask twice"

    append_synthetic(session, 2)
    honest = witnesses.publisher(log).publish_if_due(factory)
    assert honest is not None
    assert (honest.size, honest.published, len(honest.cosigners)) == (8, True, 3)
