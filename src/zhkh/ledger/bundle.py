"""Offline proofs that an entry is in the ledger: the c2sp.org/tlog-proof@v1 text format.

A resident downloads one (or scans it from a QR code) and checks it with nothing but the log's key and the
witnesses' keys: no server, no trust in the operator. The format (tlog-proof)::

    c2sp.org/tlog-proof@v1
    extra <base64>            optional, opaque, NOT authenticated; only on the second line
    index <N>                 zero-based entry index, decimal without leading zeroes
    <base64 hash>             zero or more: the RFC 6962 inclusion proof, leaf's sibling first
    ...
                              an empty line
    <checkpoint note>         verbatim: the checkpoint, the log's signature and the witnesses' cosignatures

Files SHOULD have the extension ``.tlog-proof`` (FILE_EXTENSION).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zhkh.ledger.checkpoint import (
    HASH_SIZE,
    MAX_TREE_SIZE,
    CarriesCheckpointNote,
    Checkpoint,
    parse_checkpoint,
    parse_decimal,
)
from zhkh.ledger.merkle import ProofError, leaf_hash, verify_inclusion
from zhkh.ledger.note import (
    ALG_COSIGNATURE_V1,
    NoteError,
    Verifier,
    b64decode_strict,
    b64encode,
    check_note_characters,
    parse_note,
    verified_by,
)

__all__ = [
    "FILE_EXTENSION",
    "HEADER",
    "MAX_INCLUSION_PROOF",
    "BundleError",
    "ProofBundle",
    "parse_bundle",
    "verify_bundle",
]

HEADER = "c2sp.org/tlog-proof@v1"
FILE_EXTENSION = ".tlog-proof"
MAX_INCLUSION_PROOF = 64
"""An inclusion proof in a tree of at most 2^64 - 1 leaves has at most 64 hashes."""


class BundleError(NoteError):
    """A tlog-proof text is malformed."""


@dataclass(frozen=True)
class ProofBundle(CarriesCheckpointNote):
    """One entry's proof: its index, the inclusion proof, the cosigned checkpoint note, optional extra data."""

    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None
    """tlog-proof "extra data": opaque and unauthenticated, never to be trusted implicitly. None writes no
    ``extra`` line; b"" writes an ``extra`` line with empty data."""

    def __post_init__(self) -> None:
        if not 0 <= self.index <= MAX_TREE_SIZE:
            raise BundleError(f"index {self.index} is outside 0..2^64-1")
        if len(self.proof) > MAX_INCLUSION_PROOF:
            raise BundleError(f"inclusion proof has {len(self.proof)} hashes, at most {MAX_INCLUSION_PROOF}")
        for number, node in enumerate(self.proof, start=1):
            if len(node) != HASH_SIZE:
                raise BundleError(f"inclusion proof hash {number} is {len(node)} bytes, not {HASH_SIZE}")
        try:
            parse_checkpoint(parse_note(self.checkpoint_note).text)
        except NoteError as exc:
            raise BundleError(f"checkpoint: {exc}") from None

    def format(self) -> str:
        """The tlog-proof text, ending with the checkpoint note as given."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(node) for node in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint_note


def _parse_hash(line: str, number: int) -> bytes:
    try:
        raw = b64decode_strict(line, f"line {number}: inclusion proof hash")
    except NoteError as exc:
        raise BundleError(str(exc)) from None
    if len(raw) != HASH_SIZE:
        raise BundleError(f"line {number}: inclusion proof hash is {len(raw)} bytes, not {HASH_SIZE}")
    return raw


def _parse_extra(lines: list[str]) -> tuple[bytes | None, int]:
    """The optional ``extra`` line (only ever the second line); returns it and the next line's position."""
    if len(lines) < 2 or not lines[1].startswith("extra "):
        return None, 1
    try:
        return b64decode_strict(lines[1][len("extra ") :], "line 2: extra data"), 2
    except NoteError as exc:
        raise BundleError(str(exc)) from None


def _parse_head(head: str) -> tuple[bytes | None, int, tuple[bytes, ...]]:
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise BundleError(f"line 1: expected {HEADER!r}, got {lines[0][:60]!r}")
    extra, position = _parse_extra(lines)
    if position >= len(lines) or not lines[position].startswith("index "):
        got = repr(lines[position][:60]) if position < len(lines) else "nothing"
        raise BundleError(f"line {position + 1}: expected 'index <N>', got {got}")
    index = parse_decimal(lines[position][len("index ") :], f"line {position + 1}: index", BundleError)
    hashes = lines[position + 1 :]
    if len(hashes) > MAX_INCLUSION_PROOF:
        raise BundleError(f"inclusion proof has {len(hashes)} hashes, at most {MAX_INCLUSION_PROOF}")
    proof = tuple(_parse_hash(line, number) for number, line in enumerate(hashes, start=position + 2))
    return extra, index, proof


def parse_bundle(text: str | bytes) -> ProofBundle:
    """Parse a tlog-proof text; BundleError says which line is wrong. The checkpoint note is parsed too (note
    syntax, checkpoint body) but not verified."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BundleError(f"proof is not valid UTF-8 (byte {exc.start})") from None
    try:
        check_note_characters(text, "proof")
    except NoteError as exc:
        raise BundleError(str(exc)) from None
    head, separator, checkpoint_note = text.partition("\n\n")
    if not separator:
        raise BundleError("no empty line between the inclusion proof and the checkpoint")
    extra, index, proof = _parse_head(head)
    return ProofBundle(index, proof, checkpoint_note, extra)


def _distinct_witnesses(witnesses: Sequence[Verifier], quorum: int) -> list[Verifier]:
    """The witness keys, checked: cosignature keys only, no public key under two names (the cosignature/v1
    message does not commit to the name, so one key would count twice), and a reachable quorum."""
    for witness in witnesses:
        if witness.algorithm != ALG_COSIGNATURE_V1:
            raise ValueError(f"witness key {witness.name!r} is not a cosignature/v1 (type 0x04) key")
    distinct = list(dict.fromkeys(witnesses))
    keys = [witness.public_key for witness in distinct]
    if len(set(keys)) != len(keys):
        raise ValueError("two witness entries share one public key; a cosigner needs its own key")
    if not 0 <= quorum <= len(distinct):
        raise ValueError(f"quorum {quorum} cannot be met by {len(distinct)} distinct witness keys")
    return distinct


def verify_bundle(
    bundle: ProofBundle,
    entry: bytes,
    log: Verifier,
    witnesses: Sequence[Verifier] = (),
    quorum: int = 0,
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Check a proof offline and return its checkpoint. In order: the checkpoint's origin is ``origin``
    (default: the log key's name, as tlog-checkpoint recommends), the log signed it, at least ``quorum``
    distinct ``witnesses`` cosigned it (a bad signature by a known key fails the whole proof, as signed-note
    advises), and ``leaf_hash(entry)`` is at ``bundle.index`` in its tree. NoteError or merkle.ProofError says
    which check failed; ValueError means the witness configuration itself is wrong."""
    distinct = _distinct_witnesses(witnesses, quorum)
    note = bundle.note
    checkpoint = parse_checkpoint(note.text)
    expected = log.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the expected {expected!r}")
    if log not in verified_by(note, [log]):
        raise NoteError(f"checkpoint has no signature by the log key {log.name}+{log.key_id.hex()}")
    cosigners = verified_by(note, distinct)
    if len(cosigners) < quorum:
        names = ", ".join(w.name for w in cosigners) or "none"
        raise NoteError(f"checkpoint has {len(cosigners)} valid cosignature(s) ({names}); the quorum is {quorum}")
    if bundle.index >= checkpoint.size:
        raise ProofError(f"index {bundle.index} is outside the checkpoint's tree of size {checkpoint.size}")
    verify_inclusion(leaf_hash(entry), bundle.index, checkpoint.size, list(bundle.proof), checkpoint.root)
    return checkpoint
