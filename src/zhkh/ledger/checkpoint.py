"""Checkpoints (c2sp.org/tlog-checkpoint) and the witness add-checkpoint wire format (c2sp.org/tlog-witness).

A checkpoint is the body of a signed note::

    <origin>\\n            the log's identity; non-empty (a schema-less URL is recommended, not required)
    <size>\\n              leaves in the tree, ASCII decimal, no leading zeroes ("0" for the empty tree)
    <base64 root>\\n       the RFC 6962 root hash at that size, 32 bytes
    [<extension>\\n ...]   optional, opaque, each non-empty; NOT RECOMMENDED (monitors cannot audit them)

The log signs it (note.sign_note); witnesses cosign it (note.cosign).

Witness protocol, ``POST <submission prefix>/add-checkpoint`` (tlog-witness), for the engineer writing the
HTTP server. The request body is::

    old <N>\\n                 size of the previous checkpoint the client believes the witness cosigned
    <base64 hash>\\n ...       zero to 63 consistency proof lines (MAX_PROOF_LINES)
    \\n                        an empty line
    <signed checkpoint note>  may carry several signatures

The witness decides, in this order:

1. Malformed body (parse_add_checkpoint raises AddCheckpointError) -> **400 Bad Request**. That covers: no
   ``old`` line, a size that is not canonical decimal, a proof line that is not base64 of one 32-byte hash,
   more than 63 proof lines, a missing empty line, a note or checkpoint body that does not parse.
2. Unknown origin (no log keys configured for ``checkpoint.origin``) -> **404 Not Found**.
3. No signature verifies against the log's trusted key(s) -> **403 Forbidden**. Signatures by unknown keys
   are ignored; note.verified_by raises NoteError for a bad signature by a known key, which is also 403.
4. ``old`` greater than the checkpoint size -> **400 Bad Request** (AddCheckpoint.check_sizes).
5. ``old`` differs from the size of the latest checkpoint this witness cosigned for the origin (0 if none) ->
   **409 Conflict**, body ``"<stored size>\\n"`` (format_size_response) with ``Content-Type: text/x.tlog.size``
   (SIZE_CONTENT_TYPE). A client that does not know the witness's state may send ``old 0`` to learn it.
6. The consistency proof from ``old`` to the checkpoint size, against the stored root and the new root, does not
   verify (merkle.verify_consistency raises ProofError) -> **422 Unprocessable Entity**. With ``old 0`` there is
   nothing to prove and "the proof MUST be empty": a non-empty one does not verify either, so 422 (merkle
   refuses size 0, so the server checks this case itself). The witness MAY log such a request (the signature
   was valid): it may be evidence of log misbehaviour; it MUST NOT cosign.
7. ``old`` equals the checkpoint size but the root differs from the stored root -> **409 Conflict**.
8. Otherwise the witness persists the new size and root and only then answers **200**. The check of ``old``
   against the stored size and the write MUST be one atomic step (compare-and-swap: ``UPDATE ... WHERE origin
   = ? AND size = old``; no row changed -> 409 with the now-stored size), or two concurrent requests could roll
   the stored size back.
9. The 200 body is one or more note signature lines, each ``— <name> <base64>\\n``: the witness's cosignatures
   on the checkpoint body (note.cosign(...).line). The client parses them with note.parse_signature_lines (or
   appends them to the note) and ignores cosignatures from keys it does not know.

The spec sets no body size limit; MAX_ADD_CHECKPOINT_BODY is ours (see its comment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from zhkh.ledger.note import (
    Note,
    NoteError,
    b64decode_strict,
    b64encode,
    check_note_characters,
    parse_note,
)

__all__ = [
    "HASH_SIZE",
    "MAX_ADD_CHECKPOINT_BODY",
    "MAX_PROOF_LINES",
    "MAX_TREE_SIZE",
    "SIZE_CONTENT_TYPE",
    "AddCheckpoint",
    "AddCheckpointError",
    "CarriesCheckpointNote",
    "Checkpoint",
    "CheckpointError",
    "format_size_response",
    "parse_add_checkpoint",
    "parse_checkpoint",
    "parse_decimal",
    "parse_size_response",
]

HASH_SIZE = 32
"""SHA-256, the RFC 6962 hash of the log."""
MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes and indexes are uint64 in every implementation of these formats."""
MAX_PROOF_LINES = 63
"""tlog-witness: "The client MUST NOT send more than 63 consistency proof lines"."""
MAX_ADD_CHECKPOINT_BODY = 64 * 1024
"""Our cap on an add-checkpoint request body, not the spec's: an ``old`` line (< 30 bytes), 63 proof lines
(45 bytes each, 2,835) and a checkpoint note with up to note.MAX_SIGNATURES Ed25519 signature lines fit many
times over. The server should refuse a larger body with 413 before parsing it."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""tlog-witness: Content-Type of the 409 Conflict answer, whose body is the witness's size and a newline."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(NoteError):
    """A checkpoint body is malformed."""


class AddCheckpointError(NoteError):
    """An add-checkpoint request is malformed: the witness answers 400 Bad Request."""


def parse_decimal(text: str, what: str, error: type[NoteError] = NoteError) -> int:
    """An ASCII decimal with no leading zeroes ("0" alone for zero) that fits uint64, as the C2SP formats
    write sizes and indexes; ``int()`` would also take "+5", " 5", "5_0" and "٥"."""
    if not _DECIMAL.fullmatch(text):
        raise error(f"{what} {text!r} is not a decimal number without leading zeroes")
    value = int(text)
    if value > MAX_TREE_SIZE:
        raise error(f"{what} {text} does not fit in 64 bits")
    return value


def _b64_hash(text: str, what: str, error: type[NoteError]) -> bytes:
    try:
        raw = b64decode_strict(text, what)
    except NoteError as exc:
        raise error(str(exc)) from None
    if len(raw) != HASH_SIZE:
        raise error(f"{what}: {len(raw)} bytes, a SHA-256 hash is {HASH_SIZE}")
    return raw


# --- checkpoint --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, size, root hash, and opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise CheckpointError("checkpoint origin is empty")
        if "\n" in self.origin:
            raise CheckpointError(f"checkpoint origin {self.origin!r} contains a newline")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} is outside 0..2^64-1")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root is {len(self.root)} bytes, a SHA-256 hash is {HASH_SIZE}")
        for number, extension in enumerate(self.extensions, start=4):
            if not extension or "\n" in extension:
                raise CheckpointError(f"checkpoint line {number}: an extension line must be one non-empty line")
        try:
            check_note_characters(self.format(), "checkpoint")
        except NoteError as exc:
            raise CheckpointError(str(exc)) from None

    def format(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        head = f"{self.origin}\n{self.size}\n{b64encode(self.root)}\n"
        return head + "".join(f"{extension}\n" for extension in self.extensions)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body strictly: at least three lines, each ending in a newline; a non-empty origin;
    a size in canonical decimal; a root of exactly 32 bytes in canonical base64; non-empty extension lines."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError(f"checkpoint has {len(lines)} line(s); origin, size and root hash are required")
    origin, size, root, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint line 1: the origin is empty")
    parsed_size = parse_decimal(size, "checkpoint line 2: tree size", CheckpointError)
    parsed_root = _b64_hash(root, "checkpoint line 3: root hash", CheckpointError)
    for number, extension in enumerate(extensions, start=4):
        if not extension:
            raise CheckpointError(f"checkpoint line {number}: extension lines must be non-empty")
    return Checkpoint(origin, parsed_size, parsed_root, tuple(extensions))


# --- witness add-checkpoint --------------------------------------------------------------------------------


class CarriesCheckpointNote:
    """A message that carries a signed checkpoint note as text: a witness request, a proof."""

    checkpoint_note: str

    @property
    def note(self) -> Note:
        """The signed checkpoint note, parsed (not verified)."""
        return parse_note(self.checkpoint_note)

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint body of the note, parsed (not verified)."""
        return parse_checkpoint(self.note.text)


@dataclass(frozen=True)
class AddCheckpoint(CarriesCheckpointNote):
    """The body of a tlog-witness add-checkpoint request."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint_note: str

    def __post_init__(self) -> None:
        if not 0 <= self.old_size <= MAX_TREE_SIZE:
            raise AddCheckpointError(f"old size {self.old_size} is outside 0..2^64-1")
        if len(self.proof) > MAX_PROOF_LINES:
            raise AddCheckpointError(f"{len(self.proof)} proof lines; at most {MAX_PROOF_LINES} are allowed")
        for number, node in enumerate(self.proof, start=1):
            if len(node) != HASH_SIZE:
                raise AddCheckpointError(f"proof hash {number} is {len(node)} bytes, not {HASH_SIZE}")

    def format(self) -> bytes:
        """The request body: ``old N``, proof lines, an empty line, the signed checkpoint note."""
        lines = [f"old {self.old_size}\n", *(f"{b64encode(node)}\n" for node in self.proof), "\n"]
        return ("".join(lines) + self.checkpoint_note).encode("utf-8")

    def check_sizes(self) -> Checkpoint:
        """tlog-witness: the old size MUST be at most the checkpoint size, else 400. Run it after the
        signature check (the spec orders 404 and 403 first); returns the checkpoint."""
        checkpoint = self.checkpoint
        if self.old_size > checkpoint.size:
            raise AddCheckpointError(f"old size {self.old_size} is larger than the checkpoint size {checkpoint.size}")
        return checkpoint


def _parse_head(head: str) -> tuple[int, tuple[bytes, ...]]:
    """The ``old`` line and the proof lines before the empty line."""
    old_line, *proof_lines = head.split("\n")
    if not old_line.startswith("old "):
        raise AddCheckpointError(f"line 1: expected 'old <size>', got {old_line[:40]!r}")
    old_size = parse_decimal(old_line[4:], "line 1: old size", AddCheckpointError)
    if len(proof_lines) > MAX_PROOF_LINES:
        raise AddCheckpointError(f"{len(proof_lines)} proof lines; at most {MAX_PROOF_LINES} are allowed")
    proof = tuple(
        _b64_hash(line, f"line {number}: proof hash", AddCheckpointError)
        for number, line in enumerate(proof_lines, start=2)
    )
    return old_size, proof


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse an add-checkpoint request body; AddCheckpointError says what is malformed (the witness answers
    400). The note is parsed and its body must be a checkpoint, but no signature is verified here."""
    if len(body) > MAX_ADD_CHECKPOINT_BODY:
        raise AddCheckpointError(f"request body is {len(body)} bytes; at most {MAX_ADD_CHECKPOINT_BODY} are accepted")
    try:
        text = body.decode("utf-8")
        check_note_characters(text, "request body")
    except UnicodeDecodeError as exc:
        raise AddCheckpointError(f"request body is not valid UTF-8 (byte {exc.start})") from None
    except NoteError as exc:
        raise AddCheckpointError(str(exc)) from None
    head, separator, checkpoint_note = text.partition("\n\n")
    if not separator:
        raise AddCheckpointError("no empty line between the old size and proof lines and the checkpoint")
    old_size, proof = _parse_head(head)
    request = AddCheckpoint(old_size, proof, checkpoint_note)
    try:
        request.checkpoint  # noqa: B018 - parsing is the check
    except NoteError as exc:
        raise AddCheckpointError(f"checkpoint: {exc}") from None
    return request


def format_size_response(size: int) -> bytes:
    """The 409 Conflict body: the witness's latest cosigned size in decimal and a newline."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise CheckpointError(f"size {size} is outside 0..2^64-1")
    return f"{size}\n".encode("ascii")


def parse_size_response(body: bytes) -> int:
    """Read a witness's 409 Conflict body (Content-Type text/x.tlog.size) on the client side."""
    text = body.decode("ascii", errors="replace")
    if not text.endswith("\n"):
        raise CheckpointError(f"{SIZE_CONTENT_TYPE} body {text[:40]!r} does not end with a newline")
    return parse_decimal(text[:-1], f"{SIZE_CONTENT_TYPE} body", CheckpointError)
