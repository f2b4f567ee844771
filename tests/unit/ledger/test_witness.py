"""The witness's add-checkpoint decisions (C2SP tlog-witness), each status code with the state it
leaves behind, on an in-memory SQLite state (and once on PostgreSQL when it is available)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Engine, select

from zhkh.ledger import merkle, witness
from zhkh.ledger.checkpoint import SIZE_CONTENT_TYPE, Checkpoint
from zhkh.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Signer,
    Verifier,
    generate_signer,
    parse_signature_lines,
    sign_note,
    verify_cosignature,
)
from zhkh.ledger.witness import Answer, LogState, add_checkpoint, create_witness_engine, read_state

ORIGIN = "zhkh.example/log"
NOW = 1_700_000_000
LOG = generate_signer(ORIGIN, ALG_ED25519)
WITNESS = generate_signer("witness.example/w1", ALG_COSIGNATURE_V1)
LEAVES = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(40)]
TREE = merkle.MemoryTree(LEAVES)


def root(size: int) -> bytes:
    return merkle.root(LEAVES[:size])


def proof(old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, new, TREE.node) if 0 < old < new else []


def signed(
    size: int, *, root_hash: bytes | None = None, signers: Sequence[Signer] = (LOG,), origin: str = ORIGIN
) -> str:
    text = Checkpoint(origin, size, root(size) if root_hash is None else root_hash).format()
    return sign_note(text, list(signers)).format()


def body(old: int, note: str, hashes: Sequence[bytes] | None = None) -> bytes:
    lines = [f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in hashes or []), "\n"]
    return ("".join(lines) + note).encode()


def request(
    old: int, new: int, *, root_hash: bytes | None = None, signers: Sequence[Signer] = (LOG,), origin: str = ORIGIN
) -> bytes:
    return body(old, signed(new, root_hash=root_hash, signers=signers, origin=origin), proof(old, new))


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_witness_engine("sqlite://")
    yield engine
    engine.dispose()


def submit(engine: Engine, data: bytes, logs: dict[str, list[Verifier]] | None = None) -> Answer:
    return add_checkpoint(engine, WITNESS, logs or {ORIGIN: [LOG.verifier]}, data, clock=lambda: NOW)


def state(engine: Engine) -> LogState | None:
    return read_state(engine, ORIGIN)


def evidence(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as connection:
        rows = connection.execute(select(witness.witness_evidence.c.status, witness.witness_evidence.c.reason))
        return [(row.status, row.reason) for row in rows]


def advance(engine: Engine, old: int, new: int) -> None:
    answer = submit(engine, request(old, new))
    assert answer.status == 200, answer.body


# --- 200 ---------------------------------------------------------------------------------------


def test_first_checkpoint_from_old_zero_is_cosigned_and_stored(engine):
    answer = submit(engine, request(0, 5))

    assert answer.status == 200
    assert answer.content_type.startswith("text/plain")
    (cosignature,) = parse_signature_lines(answer.body)
    assert verify_cosignature(Checkpoint(ORIGIN, 5, root(5)).format(), cosignature, WITNESS.verifier) == NOW
    assert state(engine) == LogState(5, root(5))


def test_a_consistent_extension_is_cosigned_and_moves_the_state_forward(engine):
    advance(engine, 0, 5)

    answer = submit(engine, request(5, 13))

    assert answer.status == 200
    (cosignature,) = parse_signature_lines(answer.body)
    assert verify_cosignature(Checkpoint(ORIGIN, 13, root(13)).format(), cosignature, WITNESS.verifier) == NOW
    assert state(engine) == LogState(13, root(13))
    advance(engine, 13, 40)
    assert state(engine) == LogState(40, root(40))


def test_the_same_checkpoint_again_is_cosigned_again(engine):
    advance(engine, 0, 8)

    assert submit(engine, request(8, 8)).status == 200
    assert state(engine) == LogState(8, root(8))


def test_the_cosignature_covers_extension_lines(engine):
    text = Checkpoint(ORIGIN, 3, root(3), ("extension line",)).format()
    answer = submit(engine, body(0, sign_note(text, [LOG]).format()))

    assert answer.status == 200
    (cosignature,) = parse_signature_lines(answer.body)
    assert verify_cosignature(text, cosignature, WITNESS.verifier) == NOW
    with engine.connect() as connection:
        assert connection.scalar(select(witness.witness_logs.c.checkpoint)) == text


def test_an_ed25519_witness_key_cosigns_as_cosignature_v1():
    plain = Signer(WITNESS.name, WITNESS.private_key, ALG_ED25519)
    assert witness.cosigning_signer(plain).verifier == WITNESS.verifier


def test_any_trusted_key_of_the_log_will_do_and_unknown_signatures_are_ignored(engine):
    rotated = generate_signer(ORIGIN)
    stranger = generate_signer("stranger.example/key")
    logs = {ORIGIN: [LOG.verifier, rotated.verifier]}

    assert submit(engine, request(0, 4, signers=[stranger, rotated]), logs).status == 200
    assert state(engine) == LogState(4, root(4))


def test_an_empty_tree_is_cosigned(engine):
    assert submit(engine, request(0, 0, root_hash=merkle.EMPTY_ROOT)).status == 200
    assert state(engine) == LogState(0, merkle.EMPTY_ROOT)
    advance(engine, 0, 2)


# --- 400 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"old 0\n", id="no checkpoint"),
        pytest.param(request(0, 5).replace(b"old 0\n", b""), id="no old line"),
        pytest.param(request(0, 5).replace(b"old 0", b"old 00"), id="leading zero"),
        pytest.param(request(0, 5).replace(b"old 0", b"old -1"), id="negative"),
        pytest.param(request(0, 5).replace(b"old 0", b"OLD 0"), id="upper case"),
        pytest.param(request(0, 5).replace(b"old 0\n\n", b"old 0\n"), id="no empty line"),
        pytest.param(body(0, signed(5), [b"\x01" * 31]), id="short proof hash"),
        pytest.param(request(0, 5).replace(b"old 0\n", b"old 0\nnot base64!\n"), id="proof not base64"),
        pytest.param(body(3, signed(5), [b"\x01" * 32] * 64), id="64 proof lines"),
        pytest.param(body(0, signed(5).replace("\n5\n", "\n05\n")), id="checkpoint size leading zero"),
        pytest.param(body(0, signed(5).split("\n\n")[0] + "\n"), id="unsigned checkpoint"),
        pytest.param(request(0, 5).replace(b"\n", b"\r\n"), id="CRLF"),
        pytest.param(b"old 0\n\n\xff\xfe\n", id="not UTF-8"),
    ],
)
def test_a_malformed_request_is_400_and_changes_nothing(engine, data):
    advance(engine, 0, 3)

    answer = submit(engine, data)

    assert answer.status == 400, answer.body
    assert answer.body.startswith(b"malformed add-checkpoint request: ")
    assert state(engine) == LogState(3, root(3))


def test_an_old_size_past_the_checkpoint_is_400_a_rollback_is_refused(engine):
    advance(engine, 0, 12)

    answer = submit(engine, body(12, signed(5)))

    assert answer.status == 400
    assert b"larger than the checkpoint size 5" in answer.body
    assert state(engine) == LogState(12, root(12))


def test_a_size_the_witness_cannot_store_is_400(engine):
    answer = submit(engine, body(0, signed(2**63, root_hash=root(1))))
    assert answer.status == 400
    assert state(engine) is None


# --- 403 / 404 ---------------------------------------------------------------------------------


def test_an_unknown_origin_is_404(engine):
    other = generate_signer("other.example/log")

    answer = submit(engine, request(0, 5, signers=[other], origin=other.name))

    assert answer.status == 404
    assert b"unknown log origin 'other.example/log'" in answer.body
    assert read_state(engine, other.name) is None


def test_a_checkpoint_no_trusted_key_signed_is_403(engine):
    impostor = generate_signer(ORIGIN)  # same name, another key: an unknown key, ignored

    answer = submit(engine, request(0, 5, signers=[impostor]))

    assert answer.status == 403
    assert state(engine) is None


def test_a_bad_signature_by_the_log_key_is_403(engine):
    note = signed(5)
    text, signature_line = note.split("\n\n")
    name, encoded = signature_line.rstrip("\n").split(" ")[1:]
    raw = bytearray(base64.b64decode(encoded))
    raw[-1] ^= 1
    tampered = f"{text}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"

    answer = submit(engine, body(0, tampered))

    assert answer.status == 403
    assert state(engine) is None


def test_a_signature_over_another_text_is_403(engine):
    advance(engine, 0, 5)
    forged = signed(9).replace(base64.b64encode(root(9)).decode(), base64.b64encode(root(8)).decode())

    assert submit(engine, body(5, forged, proof(5, 9))).status == 403
    assert state(engine) == LogState(5, root(5))


# --- 409 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stored", "old"), [(5, 3), (5, 0), (5, 6)])
def test_a_stale_old_size_is_409_with_the_witness_size(engine, stored, old):
    advance(engine, 0, stored)

    answer = submit(engine, request(old, 10))

    assert answer == Answer(409, f"{stored}\n".encode(), SIZE_CONTENT_TYPE)
    assert state(engine) == LogState(stored, root(stored))


def test_an_old_size_for_a_log_never_seen_is_409_with_size_zero(engine):
    answer = submit(engine, request(4, 10))

    assert answer == Answer(409, b"0\n", SIZE_CONTENT_TYPE)
    assert state(engine) is None


def test_the_same_size_with_another_root_is_409_and_kept_as_evidence(engine):
    advance(engine, 0, 8)

    answer = submit(engine, body(8, signed(8, root_hash=root(7))))

    assert answer.status == 409
    assert answer.content_type != SIZE_CONTENT_TYPE
    assert b"different root hash" in answer.body
    assert state(engine) == LogState(8, root(8))
    assert [status for status, _ in evidence(engine)] == [409]


def test_a_concurrent_request_from_the_same_old_size_loses_the_compare_and_swap(engine, monkeypatch):
    """Request B reads size 5, then request A moves the state to 9 before B writes (the race the
    spec describes): B must not roll the state back, and answers 409 with A's size."""
    advance(engine, 0, 5)
    real_read_state = witness.read_state
    raced: list[bool] = []

    def read_then_let_a_win(engine: Engine, origin: str) -> LogState | None:
        seen = real_read_state(engine, origin)
        if not raced:
            raced.append(True)
            assert submit(engine, request(5, 9)).status == 200  # request A, in between
        return seen

    monkeypatch.setattr(witness, "read_state", read_then_let_a_win)
    answer = submit(engine, request(5, 7))  # request B

    assert answer == Answer(409, b"9\n", SIZE_CONTENT_TYPE)
    monkeypatch.undo()
    assert state(engine) == LogState(9, root(9))


def test_a_concurrent_first_checkpoint_loses_the_insert(engine, monkeypatch):
    real_read_state = witness.read_state
    raced: list[bool] = []

    def read_then_let_a_win(engine: Engine, origin: str) -> LogState | None:
        seen = real_read_state(engine, origin)
        if not raced:
            raced.append(True)
            assert submit(engine, request(0, 6)).status == 200
        return seen

    monkeypatch.setattr(witness, "read_state", read_then_let_a_win)

    assert submit(engine, request(0, 4)) == Answer(409, b"6\n", SIZE_CONTENT_TYPE)
    monkeypatch.undo()
    assert state(engine) == LogState(6, root(6))


# --- 422 ---------------------------------------------------------------------------------------


def test_a_proof_that_does_not_verify_is_422_and_kept_as_evidence(engine):
    advance(engine, 0, 5)
    bad = proof(5, 13)
    bad[0] = bytes(32)

    answer = submit(engine, body(5, signed(13), bad))

    assert answer.status == 422
    assert b"consistency proof from 5 to 13 does not verify" in answer.body
    assert state(engine) == LogState(5, root(5))
    assert [status for status, _ in evidence(engine)] == [422]


def test_a_fork_with_a_proof_from_another_tree_is_422(engine):
    """The log shows this witness a tree whose first 5 leaves differ: no proof links the two."""
    advance(engine, 0, 5)
    forked = [merkle.leaf_hash(b"forged"), *LEAVES[1:13]]
    fork_tree = merkle.MemoryTree(forked)

    answer = submit(
        engine, body(5, signed(13, root_hash=fork_tree.root()), merkle.consistency_proof(5, 13, fork_tree.node))
    )

    assert answer.status == 422
    assert state(engine) == LogState(5, root(5))


def test_a_missing_proof_is_422(engine):
    advance(engine, 0, 5)

    assert submit(engine, body(5, signed(13))).status == 422
    assert state(engine) == LogState(5, root(5))


def test_a_proof_from_old_zero_must_be_empty_422(engine):
    answer = submit(engine, body(0, signed(5), [root(1)]))

    assert answer.status == 422
    assert state(engine) is None


def test_the_same_size_with_a_proof_is_422(engine):
    advance(engine, 0, 5)

    assert submit(engine, body(5, signed(5), [root(1)])).status == 422
    assert state(engine) == LogState(5, root(5))


# --- the state -----------------------------------------------------------------------------------


def test_the_state_is_kept_in_the_database_not_the_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'var' / 'witness.db'}"
    first = create_witness_engine(url)
    advance(first, 0, 5)
    first.dispose()

    second = create_witness_engine(url)
    assert submit(second, request(0, 9)) == Answer(409, b"5\n", SIZE_CONTENT_TYPE)
    advance(second, 5, 9)
    assert state(second) == LogState(9, root(9))
    second.dispose()


def test_logs_are_kept_apart(engine):
    other = generate_signer("other.example/log")
    logs = {ORIGIN: [LOG.verifier], other.name: [other.verifier]}
    advance(engine, 0, 5)

    assert submit(engine, request(0, 2, signers=[other], origin=other.name), logs).status == 200
    assert state(engine) == LogState(5, root(5))
    assert read_state(engine, other.name) == LogState(2, root(2))


@pytest.mark.postgres
def test_the_sequence_on_postgresql(postgres):
    engine = create_witness_engine(postgres.create().render_as_string(hide_password=False))
    try:
        advance(engine, 0, 5)
        assert submit(engine, request(3, 9)) == Answer(409, b"5\n", SIZE_CONTENT_TYPE)
        assert submit(engine, body(5, signed(9), [bytes(32)] * len(proof(5, 9)))).status == 422
        advance(engine, 5, 9)
        assert submit(engine, body(9, signed(9, root_hash=root(8)))).status == 409
        assert state(engine) == LogState(9, root(9))
        assert [status for status, _ in evidence(engine)] == [422, 409]
    finally:
        engine.dispose()
