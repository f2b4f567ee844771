"""The log in the database and as served: stored tiles are the tiles of the whole tree after any
sequence of appends; the published log verifies over the API; every kind of tampering with what
the database holds (an entry changed, removed or moved, a hash changed, the checkpoint forged or
stripped of cosignatures) and every rollback or fork against a trusted checkpoint is caught by
``verify_log``. On PostgreSQL the log's tables refuse UPDATE and DELETE, so the tampering here
first disables their triggers, as a malicious administrator would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import registry
from tests.integration.ledger.support import Factory, Witnesses, append_synthetic, synthetic
from zhkh.app import create_app
from zhkh.core.config import Settings
from zhkh.core.errors import InvalidInput
from zhkh.housing.models import Account
from zhkh.ledger import merkle, publication, store
from zhkh.ledger.checkpoint import Checkpoint, parse_checkpoint
from zhkh.ledger.commitments import salts
from zhkh.ledger.models import AccountSalt, LedgerCheckpoint, LedgerEntry, LedgerTile
from zhkh.ledger.note import Note, Signer, generate_signer, parse_note, sign_note
from zhkh.ledger.tiles import TileWriter
from zhkh.ledger.verify import (
    FetchFailed,
    VerificationFailed,
    Verified,
    directory_fetcher,
    http_fetcher,
    verify_log,
)

# --- the tiles in the database ----------------------------------------------------------------------


def stored_tiles(session: Session) -> dict[tuple[int, int], bytes]:
    rows = session.execute(select(LedgerTile.level, LedgerTile.idx, LedgerTile.width, LedgerTile.hashes)).all()
    for level, index, width, hashes in rows:
        assert len(hashes) == width * 32, f"tile {level}/{index}: width {width}, {len(hashes)} bytes"
    return {(level, index): bytes(hashes) for level, index, _width, hashes in rows}


def test_stored_tiles_are_the_tiles_of_the_whole_tree_after_every_append(session: Session) -> None:
    leaves: list[bytes] = []
    for batch in (1, 2, 253, 1, 300, 7, 511, 256, 13, 0):
        head = append_synthetic(session, batch)
        leaves += [merkle.leaf_hash(synthetic(len(leaves) + n)) for n in range(batch)]
        from_scratch = {(t.ref.level, t.ref.index): t.hashes for t in TileWriter().append(leaves)}
        assert stored_tiles(session) == from_scratch, f"after {len(leaves)} leaves"
        assert head == store.tree_head(session) == store.TreeHead(len(leaves), merkle.root(leaves))

    assert len(leaves) == 1344  # five full level-0 tiles and a partial one; a level-1 tile of width 5
    tree = merkle.MemoryTree(leaves)
    nodes = store.node_reader(session)
    for level, index in [(0, 0), (0, 1343), (3, 100), (8, 4), (9, 1), (10, 0)]:
        assert nodes(level, index) == tree.node(level, index)
    for index in (0, 255, 256, 1000, 1343):
        assert merkle.inclusion_proof(index, 1344, nodes) == merkle.inclusion_proof(index, 1344, tree.node)
    for old in (1, 256, 257, 1000):
        assert merkle.consistency_proof(old, 1344, nodes) == merkle.consistency_proof(old, 1344, tree.node)
    assert store.entries(session, 1340, 1344) == [synthetic(n) for n in range(1340, 1344)]


def test_the_log_tables_refuse_update_and_delete_on_postgresql(postgres_session: Session, tmp_path: Path) -> None:
    session = postgres_session
    registry(session, tmp_path, premises=1)
    append_synthetic(session, 3)
    store.publish(session, store.tree_head(session), "note", 0)
    salts(session, [session.scalars(select(Account.id)).one()])
    statements = [
        update(LedgerEntry).where(LedgerEntry.idx == 1).values(data=b"{}"),
        delete(LedgerEntry).where(LedgerEntry.idx == 2),
        update(LedgerCheckpoint).values(note="forged"),
        delete(LedgerCheckpoint),
        update(AccountSalt).values(salt=bytes(32)),
        delete(AccountSalt),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="rows are never updated or deleted"), session.begin_nested():
            session.execute(statement)
    assert store.entries(session, 0, 3) == [synthetic(n) for n in range(3)]
    # The tiles are derived and checked against the signed root: they may grow in place.
    session.execute(update(LedgerTile).where(LedgerTile.level == 0).values(width=LedgerTile.width))


# --- the published log, served over the API ------------------------------------------------------


@dataclass
class Published:
    key: Signer
    witnesses: Witnesses
    first: Checkpoint  # the first checkpoint it published (size 200)

    def verify(self, client: TestClient, quorum: int = 2, trusted: Checkpoint | None = None) -> Verified:
        fetch = http_fetcher("http://testserver/ledger", cast(httpx.Client, client))
        # One fetch at a time: the test client serves every request on the test's one connection.
        return verify_log(fetch, self.key.verifier, self.witnesses.verifiers, quorum, trusted, jobs=1)


@pytest.fixture
def log(session: Session, factory: Factory, witnesses: Witnesses) -> Published:
    """A log published twice: 200 entries, then 261 (a full and a partial tile at level 0)."""
    key = witnesses.fresh_log()
    publisher = witnesses.publisher(key)
    checkpoints = []
    for batch in (200, 61):
        append_synthetic(session, batch)
        result = publisher.publish_if_due(factory)
        assert result is not None
        assert result.published
        latest = store.latest_checkpoint(session)
        assert latest is not None
        checkpoints.append(parse_checkpoint(parse_note(latest.note).text))
    return Published(key, witnesses, checkpoints[0])


@pytest.fixture
def client(session: Session) -> Iterator[TestClient]:
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    with TestClient(create_app(session_factory=factory, settings=Settings())) as test_client:
        yield test_client


def test_the_served_log_verifies_and_extends_what_was_trusted(client: TestClient, log: Published) -> None:
    verified = log.verify(client)
    assert (verified.checkpoint.origin, verified.checkpoint.size, verified.trusted_size) == (log.key.name, 261, None)
    assert sorted(verified.cosigners) == sorted(v.name for v in log.witnesses.verifiers)
    assert log.verify(client, trusted=log.first).trusted_size == 200
    assert log.verify(client, trusted=verified.checkpoint).trusted_size == 261
    assert log.verify(client, quorum=3).checkpoint.size == 261


def disable_triggers(session: Session, *tables: str) -> None:
    """What a malicious database administrator does first on PostgreSQL (rolled back with the test)."""
    if session.get_bind().dialect.name == "postgresql":
        for table in tables:
            session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))


def entry_data(session: Session, index: int) -> bytes:
    return bytes(session.scalars(select(LedgerEntry.data).where(LedgerEntry.idx == index)).one())


def change_entry(session: Session, index: int, data: bytes) -> None:
    disable_triggers(session, "ledger_entries")
    session.execute(update(LedgerEntry).where(LedgerEntry.idx == index).values(data=data))


def flip_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def rebuild_tiles(session: Session) -> None:
    """Recompute every hash tile from the (tampered) entries, as a careful forger would."""
    leaves = [merkle.leaf_hash(entry) for entry in store.entries(session, 0, store.tree_size(session))]
    session.execute(delete(LedgerTile))
    for tile in TileWriter().append(leaves):
        session.add(LedgerTile(level=tile.ref.level, idx=tile.ref.index, width=tile.ref.width, hashes=tile.hashes))
    session.flush()


def tamper_entry(session: Session) -> None:
    change_entry(session, 7, entry_data(session, 7).replace(b'"n":7', b'"n":8'))


def tamper_entry_and_tiles(session: Session) -> None:
    tamper_entry(session)
    rebuild_tiles(session)


def delete_last_entry(session: Session) -> None:
    disable_triggers(session, "ledger_entries")
    session.execute(delete(LedgerEntry).where(LedgerEntry.idx == 260))


def swap_entries(session: Session) -> None:
    third, fourth = entry_data(session, 3), entry_data(session, 4)
    change_entry(session, 3, fourth)
    change_entry(session, 4, third)


def swap_entries_and_tiles(session: Session) -> None:
    swap_entries(session)
    rebuild_tiles(session)


def change_hash_in_partial_tile(session: Session) -> None:
    hashes = session.scalars(select(LedgerTile.hashes).where(LedgerTile.level == 0, LedgerTile.idx == 1)).one()
    session.execute(
        update(LedgerTile).where(LedgerTile.level == 0, LedgerTile.idx == 1).values(hashes=flip_byte(hashes, 40))
    )


def change_hash_in_level_one(session: Session) -> None:
    hashes = session.scalars(select(LedgerTile.hashes).where(LedgerTile.level == 1, LedgerTile.idx == 0)).one()
    session.execute(
        update(LedgerTile).where(LedgerTile.level == 1, LedgerTile.idx == 0).values(hashes=flip_byte(hashes, 0))
    )


TAMPERINGS: list[tuple[Callable[[Session], None], str]] = [
    (tamper_entry, "hash tile tile/0/000 does not match the entries it covers"),
    (tamper_entry_and_tiles, "the entries' root differs from the root signed in the checkpoint of size 261"),
    (delete_last_entry, "the log does not serve tile/entries/001.p/5, which its checkpoint of size 261 covers"),
    (swap_entries, "hash tile tile/0/000 does not match the entries it covers"),
    (swap_entries_and_tiles, "the entries' root differs from the root signed"),
    (change_hash_in_partial_tile, "hash tile tile/0/001.p/5 does not match the entries it covers"),
    (change_hash_in_level_one, "hash tile tile/1/000.p/1 does not match the entries it covers"),
]


def test_tampering_with_the_stored_log_is_found(session: Session, client: TestClient, log: Published) -> None:
    for tamper, problem in TAMPERINGS:
        assert log.verify(client).checkpoint.size == 261
        savepoint = session.begin_nested()
        tamper(session)
        session.flush()
        with pytest.raises(VerificationFailed) as failed:
            log.verify(client)
        assert problem in failed.value.message, tamper.__name__
        savepoint.rollback()  # the next tampering starts from the published log again
        session.expire_all()


def replace_note(session: Session, note: Note | str) -> None:
    disable_triggers(session, "ledger_checkpoints")
    text_ = note.format() if isinstance(note, Note) else note
    session.execute(update(LedgerCheckpoint).where(LedgerCheckpoint.size == 261).values(note=text_))
    session.flush()


def stored_note(session: Session) -> Note:
    latest = store.latest_checkpoint(session)
    assert latest is not None
    return parse_note(latest.note)


def test_a_checkpoint_re_signed_with_another_key_is_refused(
    session: Session, client: TestClient, log: Published
) -> None:
    note = stored_note(session)
    checkpoint = parse_checkpoint(note.text)
    forged_body = Checkpoint(checkpoint.origin, checkpoint.size, merkle.leaf_hash(b"another root")).format()

    impostor = generate_signer(log.key.name)  # the same name, another key
    replace_note(session, Note(forged_body, (*sign_note(forged_body, [impostor]).signatures, *note.signatures[1:])))
    with pytest.raises(VerificationFailed, match="not signed by the log key"):
        log.verify(client)

    # The log's own signature line kept under the changed body: it no longer verifies.
    replace_note(session, Note(forged_body, note.signatures))
    with pytest.raises(VerificationFailed, match="does not verify"):
        log.verify(client)


def test_too_few_cosignatures_for_the_quorum(session: Session, client: TestClient, log: Published) -> None:
    note = stored_note(session)
    assert len(note.signatures) == 4  # the log and three witnesses
    replace_note(session, Note(note.text, note.signatures[:2]))
    assert len(log.verify(client, quorum=1).cosigners) == 1
    with pytest.raises(VerificationFailed, match="has 1 valid cosignatures of the 2 required"):
        log.verify(client, quorum=2)

    # A cosignature line that names a configured witness but does not verify fails the note.
    witness_line = note.signatures[1]
    broken = type(witness_line)(witness_line.name, witness_line.key_id, flip_byte(witness_line.signature, 20))
    replace_note(session, Note(note.text, (note.signatures[0], broken, *note.signatures[2:])))
    with pytest.raises(VerificationFailed, match="cosignature does not verify"):
        log.verify(client)


def test_the_log_key_does_not_count_as_a_witness(session: Session, client: TestClient, log: Published) -> None:
    """Only cosignature/v1 keys are witnesses: the log's own Ed25519 key given as a witness must
    not turn the log's signature into a cosignature."""
    note = stored_note(session)
    replace_note(session, Note(note.text, note.signatures[:1]))  # the log's signature alone
    fetch = http_fetcher("http://testserver/ledger", cast(httpx.Client, client))
    with pytest.raises(InvalidInput, match="is not a cosignature/v1"):
        verify_log(fetch, log.key.verifier, [log.key.verifier], 1, jobs=1)


def other_history_root(size: int) -> bytes:
    return merkle.root([merkle.leaf_hash(synthetic(n, tag="other")) for n in range(size)])


def test_a_fork_or_a_rollback_against_the_trusted_checkpoint(client: TestClient, log: Published) -> None:
    origin = log.key.name
    fork = Checkpoint(origin, 200, other_history_root(200))
    with pytest.raises(VerificationFailed, match="fork: the first 200 entries"):
        log.verify(client, trusted=fork)
    same_size_fork = Checkpoint(origin, 261, other_history_root(261))
    with pytest.raises(VerificationFailed, match="fork: the first 261 entries"):
        log.verify(client, trusted=same_size_fork)
    with pytest.raises(VerificationFailed, match="rollback: the log shows 261 entries, but 262 were already"):
        log.verify(client, trusted=Checkpoint(origin, 262, other_history_root(262)))
    with pytest.raises(VerificationFailed, match="the trusted checkpoint is of log"):
        log.verify(client, trusted=Checkpoint("zhkh.test/another-log", 200, log.first.root))
    assert log.verify(client, trusted=log.first).trusted_size == 200


def test_a_missing_or_changed_file_of_an_export(session: Session, log: Published, tmp_path: Path) -> None:
    """The same data as files (``zhkh ledger export``): a bundle the checkpoint covers is missing,
    then a hash tile is changed."""
    directory = tmp_path / "export"
    assert publication.export(session, directory) > 0
    fetch = directory_fetcher(directory)
    assert verify_log(fetch, log.key.verifier, log.witnesses.verifiers, 2).checkpoint.size == 261
    bundle = directory / "tile/entries/001.p/5"
    kept = bundle.read_bytes()
    bundle.unlink()
    with pytest.raises(VerificationFailed, match=r"tile/entries/001\.p/5"):
        verify_log(fetch, log.key.verifier, log.witnesses.verifiers, 2)
    bundle.write_bytes(kept)
    tile = directory / "tile/0/000"
    tile.write_bytes(flip_byte(tile.read_bytes(), 100))
    with pytest.raises(VerificationFailed, match="hash tile tile/0/000 does not match"):
        verify_log(fetch, log.key.verifier, log.witnesses.verifiers, 2)


def test_an_entry_too_long_for_a_bundle_is_never_appended(session: Session) -> None:
    append_synthetic(session, 2)
    longest = store.NewEntry(b"x" * 65535)
    with pytest.raises(ValueError, match="an entry of 65536 bytes; an entry is at most 65535"):
        store.append(session, [longest, store.NewEntry(b"x" * 65536)])
    assert store.tree_size(session) == 2
    assert store.append(session, [longest]).size == 3


def test_nothing_published_yet(session: Session, client: TestClient, tmp_path: Path) -> None:
    append_synthetic(session, 3)  # logged, not published
    answer = client.get("/ledger/checkpoint")
    assert answer.status_code == 404
    assert "no checkpoint yet" in answer.json()["detail"]
    key = generate_signer("zhkh.test/unpublished")
    with pytest.raises(FetchFailed) as failed:
        verify_log(http_fetcher("http://testserver/ledger", cast(httpx.Client, client)), key.verifier, jobs=1)
    assert not isinstance(failed.value, VerificationFailed)
    unpublished = client.get("/ledger/tile/entries/000.p/3")
    assert unpublished.status_code == 404, "nothing is served before a checkpoint covering it is cosigned"
    assert "published ledger has no tile" in unpublished.json()["detail"]


def test_export_writes_only_what_changed(session: Session, log: Published, tmp_path: Path) -> None:
    directory = tmp_path / "mirror"
    first = publication.export(session, directory)
    assert first == sum(1 for path in directory.rglob("*") if path.is_file())
    assert publication.export(session, directory) == 0, "the same files are left alone"
    assert not list(directory.rglob("*.tmp"))


def test_only_the_published_tree_is_served(session: Session, client: TestClient, log: Published) -> None:
    """Published: 261 entries. Logged since: 100 more, which complete the partial tile at level 0;
    until a checkpoint covers them, the full tile (which would be served as immutable) is not."""
    append_synthetic(session, 100)
    assert client.get("/ledger/tile/0/001.p/5").status_code == 200
    assert client.get("/ledger/tile/entries/001.p/5").status_code == 200
    for beyond in ("0/001", "0/001.p/6", "entries/001", "1/000.p/2", "0/x999/x999/x999/x999/x999/x999/999"):
        answer = client.get(f"/ledger/tile/{beyond}")
        assert answer.status_code == 404, beyond
