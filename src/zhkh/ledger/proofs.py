"""A resident's proofs: that their entries of a period are in the published log.

For each entry of the account in the period (found by its commitment), a tlog-proof bundle
(c2sp.org/tlog-proof@v1) against the newest published checkpoint. The bundle's ``extra`` data
carries the entry itself and the *opening* of its commitment (the account number and its salt),
so the file is checked offline with nothing but the log's and the witnesses' keys: the entry is
in the tree, and the entry's ``account`` is this account. The opening is the resident's own; the
log itself only ever shows the commitment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.errors import DomainError, InvalidInput, NotFound
from zhkh.ledger import store
from zhkh.ledger.bundle import ProofBundle, parse_bundle, verify_bundle
from zhkh.ledger.checkpoint import Checkpoint
from zhkh.ledger.commitments import SALT_SIZE, commitment, salts
from zhkh.ledger.entries import canonical
from zhkh.ledger.merkle import ProofError, inclusion_proof
from zhkh.ledger.models import LedgerEntry
from zhkh.ledger.note import NoteError, Verifier


class ProofInvalid(DomainError):
    """A resident's proof does not verify; the message says which check failed."""

    status_code = 409


@dataclass(frozen=True)
class ResidentProof:
    index: int
    entry: bytes
    bundle: str  # the tlog-proof text

    @property
    def entry_type(self) -> str:
        return str(json.loads(self.entry)["type"])


def resident_proofs(session: Session, account_id: int, account_number: str, period: date) -> list[ResidentProof]:
    """The account's entries of ``period`` in the newest published checkpoint, with their proofs."""
    latest = store.latest_checkpoint(session)
    if latest is None:
        raise NotFound("the ledger has published no checkpoint yet")
    salt = salts(session, [account_id])[account_id]
    committed = commitment(salt, account_number)
    rows = session.execute(
        select(LedgerEntry.idx, LedgerEntry.data)
        .where(LedgerEntry.commitment == committed, LedgerEntry.period == period, LedgerEntry.idx < latest.size)
        .order_by(LedgerEntry.idx)
    ).all()
    tiles = store.TileReader(session)
    opening = {"account": account_number, "salt": salt.hex()}
    proofs = []
    for index, data in rows:
        tiles.prefetch(index, latest.size)
        extra = canonical({"entry": bytes(data).decode(), **opening})
        bundle = ProofBundle(index, tuple(inclusion_proof(index, latest.size, tiles.node)), latest.note, extra)
        proofs.append(ResidentProof(index, bytes(data), bundle.format()))
    return proofs


@dataclass(frozen=True)
class Opened:
    checkpoint: Checkpoint
    index: int
    entry: dict[str, Any]
    account: str


def verify_resident_proof(
    text: str | bytes,
    log: Verifier,
    witnesses: list[Verifier] | None = None,
    quorum: int = 0,
    origin: str | None = None,
) -> Opened:
    """Check a proof file offline: the checkpoint's signatures, the entry's inclusion, and that
    the entry's commitment opens to the account named in the file. ``ProofInvalid`` says what in
    the proof is wrong; ``InvalidInput`` that the witness keys and quorum given cannot check any."""
    try:
        bundle = parse_bundle(text)
    except NoteError as exc:
        raise ProofInvalid(f"the proof does not verify: {exc}") from exc
    entry_text, account, salt = _opening(bundle.extra)
    try:
        checkpoint = verify_bundle(bundle, entry_text.encode(), log, witnesses or [], quorum, origin=origin)
    except (NoteError, ProofError) as exc:
        raise ProofInvalid(f"the proof does not verify: {exc}") from exc
    except ValueError as exc:  # the witness keys or the quorum, not the proof
        raise InvalidInput(f"the witness keys given cannot check a proof: {exc}") from exc
    try:
        entry = json.loads(entry_text)
    except ValueError as exc:
        raise ProofInvalid(f"the entry at index {bundle.index} is not JSON: {exc}") from exc
    if not isinstance(entry, dict) or entry.get("account") != commitment(salt, account).hex():
        raise ProofInvalid(f"the entry at index {bundle.index} is not about account {account}: its commitment differs")
    return Opened(checkpoint, bundle.index, entry, account)


def _opening(extra: bytes | None) -> tuple[str, str, bytes]:
    """The entry, the account number and the salt the proof's extra data carries."""
    if extra is None:
        raise ProofInvalid("the proof carries no entry (its extra data is missing)")
    problem = "the proof's extra data is not an entry with its opening"
    try:
        document = json.loads(extra)
    except ValueError as exc:  # UnicodeDecodeError included
        raise ProofInvalid(f"{problem}: it is not JSON ({exc})") from exc
    fields = ("entry", "account", "salt")
    if not isinstance(document, dict) or not all(isinstance(document.get(name), str) for name in fields):
        raise ProofInvalid(f"{problem}: it needs the strings {', '.join(fields)}")
    try:
        salt = bytes.fromhex(document["salt"])
    except ValueError as exc:
        raise ProofInvalid(f"{problem}: the salt is not hex ({exc})") from exc
    # SHA-256(salt || number) opens one way only if the salt's length is fixed: with any length,
    # (S, "100101") and (S + "10", "0101") would open the same commitment for another account.
    if len(salt) != SALT_SIZE:
        raise ProofInvalid(f"{problem}: the salt is {len(salt)} bytes, not {SALT_SIZE}")
    if not document["account"]:
        raise ProofInvalid(f"{problem}: the account number is empty")
    return document["entry"], document["account"], salt
