"""A resident's proofs: for their account and a period, one tlog-proof per entry against the
newest published checkpoint (cosigned by real witness processes), checked offline with nothing
but the keys; any change to the entry, the index, a proof hash, the checkpoint or the opening
of the commitment makes the proof fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.integration.ledger.support import NUMBERS, Factory, Witnesses, accrued_message, sha256_hex
from zhkh.core.errors import InvalidInput
from zhkh.ledger import store
from zhkh.ledger.bundle import parse_bundle
from zhkh.ledger.checkpoint import Checkpoint, parse_checkpoint
from zhkh.ledger.entries import canonical
from zhkh.ledger.models import AccountSalt, LedgerEntry
from zhkh.ledger.note import Note, Signer, parse_note
from zhkh.ledger.proofs import ProofInvalid, ResidentProof, resident_proofs, verify_resident_proof
from zhkh.ledger.sequencer import Sequencer
from zhkh.payments.models import PaymentSource
from zhkh.payments.service import Incoming, take_in
from zhkh.worker import fact_readers

APRIL, MAY = date(2026, 4, 1), date(2026, 5, 1)


@dataclass
class Proofs:
    key: Signer
    witnesses: Witnesses
    account_id: int
    proofs: list[ResidentProof]

    def verify(self, text: str, quorum: int = 2) -> str:
        return verify_resident_proof(text, self.key.verifier, self.witnesses.verifiers, quorum).account


@pytest.fixture
def april(session: Session, factory: Factory, witnesses: Witnesses, town: dict[str, int]) -> Proofs:
    """April's accruals of every account and payments of two; May's of the first; all published.
    Then one more payment that is logged but not yet published."""
    for number in NUMBERS:
        accrued_message(session, town[number], "2026-04", amount=30000 + town[number])
    take_in(
        session,
        PaymentSource.CASH_DESK,
        [
            Incoming("p-1", 12000, date(2026, 4, 12), NUMBERS[0]),
            Incoming("p-2", 3000, date(2026, 4, 13), NUMBERS[1]),
            Incoming("p-3", 4000, date(2026, 5, 3), NUMBERS[0]),
        ],
    )
    accrued_message(session, town[NUMBERS[0]], "2026-05")
    session.flush()
    Sequencer(fact_readers()).run_once(factory)
    key = witnesses.fresh_log()
    result = witnesses.publisher(key).publish_if_due(factory)
    assert result is not None
    assert result.published
    take_in(session, PaymentSource.CASH_DESK, [Incoming("p-4", 500, date(2026, 4, 29), NUMBERS[0])])
    session.flush()
    assert Sequencer(fact_readers()).run_once(factory) == 1
    session.expire_all()
    account_id = town[NUMBERS[0]]
    return Proofs(key, witnesses, account_id, resident_proofs(session, account_id, NUMBERS[0], APRIL))


def test_each_entry_of_the_account_and_period_has_a_proof_that_verifies_offline(
    session: Session, april: Proofs
) -> None:
    salt = session.scalars(select(AccountSalt.salt).where(AccountSalt.account_id == april.account_id)).one()
    committed = sha256_hex(salt, NUMBERS[0])
    latest = store.latest_checkpoint(session)
    assert latest is not None
    expected = {
        row.idx: bytes(row.data)
        for row in session.scalars(select(LedgerEntry).where(LedgerEntry.idx < latest.size))
        if json.loads(row.data).get("account") == committed
        and (json.loads(row.data).get("period") == "2026-04" or json.loads(row.data).get("date", "")[:7] == "2026-04")
    }
    assert len(expected) == 4  # accrual, benefit, recalculation, the payment of 12 April
    assert {p.index: p.entry for p in april.proofs} == expected
    assert sorted(p.entry_type for p in april.proofs) == ["accrual", "benefit", "payment", "recalculation"]
    for proof in april.proofs:
        opened = verify_resident_proof(proof.bundle, april.key.verifier, april.witnesses.verifiers, 3)
        assert (opened.index, opened.account, opened.checkpoint.size) == (proof.index, NUMBERS[0], latest.size)
        assert canonical(opened.entry) == proof.entry
        assert parse_bundle(proof.bundle).checkpoint_note == latest.note

    others = resident_proofs(session, april.account_id, NUMBERS[0], MAY)
    assert sorted(p.entry_type for p in others) == ["accrual", "benefit", "payment", "recalculation"]
    assert not {p.index for p in others} & set(expected)


def rebuilt(text: str, **changes: object) -> str:
    return replace(parse_bundle(text), **changes).format()  # type: ignore[arg-type]


def with_extra(text: str, change: Callable[[dict[str, object]], object]) -> str:
    bundle = parse_bundle(text)
    assert bundle.extra is not None
    extra = json.loads(bundle.extra)
    change(extra)
    return replace(bundle, extra=json.dumps(extra).encode()).format()


def changed_entry(text: str) -> str:
    def change(extra: dict[str, object]) -> None:
        entry = json.loads(str(extra["entry"]))
        if "total" in entry:
            entry["total"] += 100
        else:
            entry["postings"][0]["kopecks"] += 100
        extra["entry"] = canonical(entry).decode()

    return with_extra(text, change)


def other_index(text: str) -> str:
    bundle = parse_bundle(text)
    return rebuilt(text, index=bundle.index + 1)


def changed_proof_hash(text: str) -> str:
    bundle = parse_bundle(text)
    first = bytes([bundle.proof[0][0] ^ 0x80]) + bundle.proof[0][1:]
    return rebuilt(text, proof=(first, *bundle.proof[1:]))


def changed_root(text: str) -> str:
    bundle = parse_bundle(text)
    note = parse_note(bundle.checkpoint_note)
    checkpoint = parse_checkpoint(note.text)
    body = Checkpoint(checkpoint.origin, checkpoint.size, bytes(32)).format()
    return rebuilt(text, checkpoint_note=Note(body, note.signatures).format())


def other_number(text: str) -> str:
    return with_extra(text, lambda extra: extra.update(account=NUMBERS[1]))


def other_salt(text: str) -> str:
    return with_extra(text, lambda extra: extra.update(salt=bytes(32).hex()))


TAMPERINGS: list[tuple[Callable[[str], str], str]] = [
    (changed_entry, "does not verify"),
    (other_index, "does not verify"),
    (changed_proof_hash, "does not verify"),
    (changed_root, "does not verify"),
    (other_number, "is not about account 5190337262"),
    (other_salt, "its commitment differs"),
]


def test_a_tampered_proof_fails(april: Proofs) -> None:
    for proof in april.proofs:
        assert april.verify(proof.bundle) == NUMBERS[0]
        for tamper, problem in TAMPERINGS:
            with pytest.raises(ProofInvalid, match=problem):
                april.verify(tamper(proof.bundle))


def test_the_opening_of_another_account_does_not_claim_this_entry(
    session: Session, april: Proofs, town: dict[str, int]
) -> None:
    """Even the true number and salt of another account do not open this account's commitment."""
    salt = session.scalars(select(AccountSalt.salt).where(AccountSalt.account_id == town[NUMBERS[1]])).one()
    opening = {"account": NUMBERS[1], "salt": bytes(salt).hex()}
    text = with_extra(april.proofs[0].bundle, lambda extra: extra.update(opening))
    with pytest.raises(ProofInvalid, match="its commitment differs"):
        april.verify(text)


def test_too_few_cosignatures_or_a_wrong_key(april: Proofs) -> None:
    text = april.proofs[0].bundle
    note = parse_note(parse_bundle(text).checkpoint_note)
    assert len(note.signatures) == 4
    stripped = rebuilt(text, checkpoint_note=Note(note.text, note.signatures[:2]).format())
    assert april.verify(stripped, quorum=1) == NUMBERS[0]
    with pytest.raises(ProofInvalid, match=r"1 valid cosignature.*the quorum is 2"):
        april.verify(stripped, quorum=2)
    other = april.witnesses.fresh_log()
    with pytest.raises(ProofInvalid, match="not the expected"):
        verify_resident_proof(text, other.verifier, april.witnesses.verifiers, 2)


MALFORMED_EXTRA = [
    b"not json",
    b"\xff\xfe",
    b"[1, 2]",
    b'{"entry": 5, "account": "5190337261", "salt": "00"}',
    b'{"entry": {"type": "payment"}, "account": "5190337261", "salt": "00"}',
    b'{"account": "5190337261", "salt": "00"}',
]
MALFORMED_OPENINGS: list[dict[str, object]] = [
    {"account": 5190337261},
    {"salt": "zz"},
    {"salt": None},
    {"account": None},
]


def test_malformed_extra_data_is_an_invalid_proof(april: Proofs) -> None:
    bundle = parse_bundle(april.proofs[0].bundle)
    for extra in MALFORMED_EXTRA:
        with pytest.raises(ProofInvalid, match="extra data"):
            april.verify(replace(bundle, extra=extra).format())
    for opening in MALFORMED_OPENINGS:
        document = json.loads(bundle.extra or b"")
        with pytest.raises(ProofInvalid, match="extra data"):
            april.verify(replace(bundle, extra=json.dumps(document | opening).encode()).format())
    with pytest.raises(ProofInvalid, match="carries no entry"):
        april.verify(replace(bundle, extra=None).format())


def test_witness_keys_that_cannot_check_a_proof_are_said_so(april: Proofs) -> None:
    """The proof is fine: the keys given are not a witness's, or too few for the quorum."""
    text = april.proofs[0].bundle
    with pytest.raises(InvalidInput, match=r"witness keys given cannot check a proof: .*not a cosignature/v1"):
        verify_resident_proof(text, april.key.verifier, [april.key.verifier], 1)
    with pytest.raises(InvalidInput, match="quorum 2 cannot be met by 1"):
        verify_resident_proof(text, april.key.verifier, april.witnesses.verifiers[:1], 2)


def test_no_proof_of_what_is_not_published(session: Session, april: Proofs) -> None:
    latest = store.latest_checkpoint(session)
    assert latest is not None
    assert store.tree_size(session) == latest.size + 1, "the 29 April payment is logged, not yet published"
    assert all(p.index < latest.size for p in april.proofs)


def test_the_opening_cannot_be_split_otherwise_to_claim_another_account(april: Proofs) -> None:
    """SHA-256(salt || number) with a 32-byte salt opens one way only: moving the first digits
    of the number into the salt gives the same hash, and is refused."""
    bundle = parse_bundle(april.proofs[0].bundle)
    document = json.loads(bundle.extra or b"")
    number, salt = document["account"], bytes.fromhex(document["salt"])
    assert sha256_hex(salt + number[:2].encode(), number[2:]) == sha256_hex(salt, number), "the same commitment"
    for account, longer in [(number[2:], salt + number[:2].encode()), ("", salt + number.encode())]:
        forged = json.dumps(document | {"account": account, "salt": longer.hex()}).encode()
        with pytest.raises(ProofInvalid, match="extra data"):
            april.verify(replace(bundle, extra=forged).format())
