"""Publishing checkpoints: sign the tree head, collect witnesses' cosignatures, publish at quorum.

At most once per ``interval`` while entries are pending, the log signs a checkpoint of its
current tree and sends it to every witness (C2SP tlog-witness ``add-checkpoint``) with a
consistency proof from the size that witness last cosigned. The checkpoint is published (stored
with its cosignatures, and from then on served) only when at least ``quorum`` witnesses
cosigned it. A witness that is down, slow or refuses simply does not count; while the quorum
holds the log goes on, and when it does not, publication waits and the entries stay pending
(they are stored already) until enough witnesses answer again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import Session

from zhkh.core.config import Settings
from zhkh.core.errors import InvalidInput
from zhkh.ledger import store
from zhkh.ledger.checkpoint import SIZE_CONTENT_TYPE, AddCheckpoint, Checkpoint, parse_size_response
from zhkh.ledger.merkle import consistency_proof
from zhkh.ledger.note import (
    Note,
    NoteError,
    Signature,
    Signer,
    Verifier,
    parse_signature_lines,
    parse_verifier_key,
    sign_note,
)
from zhkh.ledger.note import verify_cosignature as check_cosignature

log = logging.getLogger("zhkh.ledger")

PUBLISH_LOCK = 0x7A686B6C02  # an arbitrary constant: the advisory lock of the one publisher at a time


@dataclass
class Witness:
    url: str
    verifier: Verifier
    size: int | None = None  # what it last cosigned, as far as the log knows


@dataclass(frozen=True)
class Answer:
    witness: Witness
    status: int  # HTTP status; 0 when it could not be reached
    cosignature: Signature | None = None
    size: int | None = None  # its size, on 409
    reason: str = ""


@dataclass(frozen=True)
class Publication:
    size: int
    published: bool
    cosigners: list[str]
    failures: dict[str, str]


@dataclass
class Publisher:
    signer: Signer
    origin: str
    witnesses: list[Witness] = field(default_factory=list)
    quorum: int = 0
    interval: float = 1.0  # seconds between two signed checkpoints, at the least
    timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_signed: float | None = None

    def __post_init__(self) -> None:
        distinct = len({w.verifier.public_key for w in self.witnesses})
        if not 0 <= self.quorum <= distinct:
            raise InvalidInput(
                f"a quorum of {self.quorum} can never be met by {distinct} distinct witness keys "
                "(ZHKH_LEDGER_QUORUM, ZHKH_LEDGER_WITNESSES)"
            )

    @classmethod
    def from_settings(cls, settings: Settings, signer: Signer) -> Publisher:
        witnesses = [Witness(w.url.rstrip("/"), parse_verifier_key(w.key)) for w in settings.ledger_witnesses]
        return cls(signer, settings.ledger_origin, witnesses, settings.witness_quorum)

    def publish_if_due(self, factory: Callable[[], Session]) -> Publication | None:
        """Sign, collect and publish a checkpoint of the current tree, if entries are pending
        and the last signature is at least ``interval`` old; ``None`` when nothing was due.

        The witnesses are asked inside a transaction that only reads (the tree, the proofs);
        the checkpoint is stored in a short transaction of its own afterwards, so no write lock
        is held while witnesses answer (SQLite would refuse a write from a snapshot that other
        writers moved past meanwhile)."""
        now = self.clock()
        if self.last_signed is not None and now - self.last_signed < self.interval:
            return None
        with factory() as session, session.begin():
            if not store.take_lock(session, wait=False, key=PUBLISH_LOCK):
                return None
            head = store.tree_head(session)
            latest = store.latest_checkpoint(session)
            published_size = latest.size if latest is not None else 0
            if head.size == 0 or head.size <= published_size:
                return None
            self.last_signed = now
            body = Checkpoint(self.origin, head.size, head.root).format()
            signed = sign_note(body, [self.signer])
            answers = self._ask_all(signed.format(), body, head.size, store.node_reader(session), published_size)
        cosignatures = [a.cosignature for a in answers if a.cosignature is not None]
        failures = {a.witness.verifier.name: a.reason for a in answers if a.cosignature is None}
        cosigners = [a.witness.verifier.name for a in answers if a.cosignature is not None]
        counted = len({a.witness.verifier.public_key for a in answers if a.cosignature is not None})
        if counted < self.quorum:
            log.warning("ledger: checkpoint %d: %d cosignatures of %d needed", head.size, counted, self.quorum)
            return Publication(head.size, False, cosigners, failures)
        note = Note(body, (*signed.signatures, *cosignatures)).format()
        with factory() as session, session.begin():
            store.take_lock(session, key=PUBLISH_LOCK)
            latest = store.latest_checkpoint(session)
            if latest is not None and latest.size >= head.size:
                return Publication(head.size, False, cosigners, {"log": f"size {latest.size} was published meanwhile"})
            store.publish(session, head, note, counted)
        return Publication(head.size, True, cosigners, failures)

    def _ask_all(
        self, note: str, body: str, size: int, nodes: Callable[[int, int], bytes], published_size: int
    ) -> list[Answer]:
        """Ask every witness; a witness that knew another size (a 409 with its size) is asked once
        more with a proof from that size. A 409 without a size is a refusal (a fork it keeps as
        evidence): asking again would only repeat it. Proofs are computed here: the session is
        not shared with threads."""
        requests = {id(w): self._request(w, note, size, nodes, published_size) for w in self.witnesses}
        answers = self._send(requests, body)
        retry = {
            id(a.witness): self._request(a.witness, note, size, nodes, published_size)
            for a in answers
            if a.status == 409 and a.size is not None
        }
        if retry:
            again = {id(a.witness): a for a in self._send(retry, body)}
            answers = [again.get(id(a.witness), a) for a in answers]
        return answers

    def _request(
        self, witness: Witness, note: str, size: int, nodes: Callable[[int, int], bytes], published_size: int
    ) -> tuple[Witness, bytes]:
        old = witness.size if witness.size is not None else published_size
        old = min(old, size)
        proof = consistency_proof(old, size, nodes) if 0 < old < size else []
        return witness, AddCheckpoint(old, tuple(proof), note).format()

    def _send(self, requests: dict[int, tuple[Witness, bytes]], body: str) -> list[Answer]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            return list(pool.map(lambda item: self._post_safely(item[0], item[1], body), requests.values()))

    def _post_safely(self, witness: Witness, request: bytes, body: str) -> Answer:
        try:
            return self._post(witness, request, body)
        except Exception as exc:  # a witness's fault must not stop the others' publication
            return Answer(witness, 0, reason=f"failed: {type(exc).__name__}: {exc}")

    def _post(self, witness: Witness, request: bytes, body: str) -> Answer:
        """One witness's answer; whatever a witness does wrong (no answer, a malformed one) is a
        missing cosignature, never a failure of the publication the others may carry."""
        try:
            response = httpx.post(f"{witness.url}/add-checkpoint", content=request, timeout=self.timeout)
        except httpx.HTTPError as exc:
            return Answer(witness, 0, reason=f"unreachable: {exc}")
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
            try:
                witness.size = parse_size_response(response.content)
            except NoteError as exc:
                return Answer(witness, 409, reason=f"an unreadable size: {exc}")
            return Answer(witness, 409, size=witness.size, reason=f"it has size {witness.size}")
        if response.status_code != 200:
            return Answer(
                witness, response.status_code, reason=f"{response.status_code}: {response.text.strip()[:200]}"
            )
        return self._accept(witness, body, response.text)

    def _accept(self, witness: Witness, checkpoint_body: str, text: str) -> Answer:
        """A cosignature counts only if it verifies with the witness's configured key."""
        try:
            signatures = parse_signature_lines(text)
        except NoteError as exc:
            return Answer(witness, 200, reason=f"unreadable answer: {exc}")
        for signature in signatures:
            if signature.name != witness.verifier.name or signature.key_id != witness.verifier.key_id:
                continue
            try:
                check_cosignature(checkpoint_body, signature, witness.verifier)
            except NoteError as exc:
                return Answer(witness, 200, reason=f"bad cosignature: {exc}")
            witness.size = int(checkpoint_body.split("\n")[1])
            return Answer(witness, 200, cosignature=signature)
        return Answer(witness, 200, reason="no cosignature by its key in the answer")


def witnesses_from(pairs: Sequence[tuple[str, str]]) -> list[Witness]:
    return [Witness(url.rstrip("/"), parse_verifier_key(key)) for url, key in pairs]
